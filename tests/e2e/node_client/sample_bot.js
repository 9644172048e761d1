// A small bot written the way Meta's Workplace samples (ExpenseBot, ThanksBot) talk to Graph, with
// Node's built-in modules only: it answers the subscription handshake, checks each delivery's
// X-Hub-Signature (HMAC-SHA1 of the raw body), replies to messages through /me/messages, sets its
// persistent menu with nested parameters in bracket form (as the `request` library's `qs` option
// encodes them) and subscribes the page topic with messaging_optins, the app token as the bearer.
// Settings come from the environment: GRAPH, ACCESS_TOKEN, APP_ID, APP_SECRET, VERIFY_TOKEN.
// It prints one JSON line per thing it did, for the test that runs it to read.
'use strict';

const crypto = require('crypto');
const http = require('http');

const {GRAPH, ACCESS_TOKEN, APP_ID, APP_SECRET, VERIFY_TOKEN} = process.env;

function report(what) {
    process.stdout.write(JSON.stringify(what) + '\n');
}

// Nested objects and arrays as `a[0][b]=x` pairs, arrays by index, as the `qs` module writes them.
function brackets(value, prefix, pairs) {
    if (value !== null && typeof value === 'object') {
        for (const key of Object.keys(value)) {
            brackets(value[key], prefix ? `${prefix}[${key}]` : key, pairs);
        }
    } else {
        pairs.push(encodeURIComponent(prefix) + '=' + encodeURIComponent(value === null ? '' : String(value)));
    }
    return pairs;
}

function graph(method, path, {qs, json, token = ACCESS_TOKEN} = {}) {
    const url = new URL(GRAPH.replace(/\/$/, '') + path);
    if (qs) {
        url.search = brackets(qs, '', []).join('&');
    }
    const body = json === undefined ? '' : JSON.stringify(json);
    const headers = {Authorization: `Bearer ${token}`, Accept: 'application/json'};
    if (body) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = Buffer.byteLength(body);
    }
    return new Promise((resolve, reject) => {
        const request = http.request(url, {method, headers}, (response) => {
            const chunks = [];
            response.on('data', (chunk) => chunks.push(chunk));
            response.on('end', () => resolve({status: response.statusCode,
                                              body: JSON.parse(Buffer.concat(chunks).toString() || 'null')}));
        });
        request.on('error', reject);
        request.end(body);
    });
}

function signedBy(secret, raw, header) {
    const expected = 'sha1=' + crypto.createHmac('sha1', secret).update(raw).digest('hex');
    return typeof header === 'string' && header.length === expected.length &&
        crypto.timingSafeEqual(Buffer.from(header), Buffer.from(expected));
}

function handshake(url, response) {
    const ok = url.searchParams.get('hub.mode') === 'subscribe' &&
        url.searchParams.get('hub.verify_token') === VERIFY_TOKEN;
    response.writeHead(ok ? 200 : 403, {'Content-Type': 'text/plain'});
    response.end(ok ? url.searchParams.get('hub.challenge') : 'wrong verify token');
    report({handshake: ok});
}

async function delivery(raw, request, response) {
    if (!signedBy(APP_SECRET, raw, request.headers['x-hub-signature'])) {
        response.writeHead(403);
        response.end();
        report({delivery: 'refused'});
        return;
    }
    response.writeHead(200);
    response.end();
    const data = JSON.parse(raw.toString());
    for (const entry of data.entry || []) {
        for (const event of entry.messaging || []) {
            if (event.message && event.message.text) {
                const sent = await graph('POST', '/me/messages', {json: {
                    recipient: {id: event.sender.id}, message: {text: `echo: ${event.message.text}`}}});
                report({reply: sent});
            }
        }
    }
}

const server = http.createServer((request, response) => {
    const url = new URL(request.url, 'http://localhost');
    if (request.method === 'GET') {
        handshake(url, response);
        return;
    }
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => delivery(Buffer.concat(chunks), request, response).catch((error) => {
        report({error: String(error)});
    }));
});

async function setUp(port) {
    const menu = await graph('POST', '/me/messenger_profile', {qs: {persistent_menu: [{
        locale: 'default', composer_input_disabled: false,
        call_to_actions: [{title: 'File a new claim', type: 'postback', payload: 'FILE_NEW_CLAIM'}]}]}});
    const subscription = await graph('POST', '/app/subscriptions', {token: `${APP_ID}|${APP_SECRET}`, qs: {
        object: 'page', fields: 'message_deliveries,messages,messaging_postbacks,messaging_optins',
        verify_token: VERIFY_TOKEN, callback_url: `http://127.0.0.1:${port}/webhook`}});
    report({setup: {menu, subscription}});
}

server.listen(0, '127.0.0.1', () => {
    const {port} = server.address();
    report({listening: port});
    setUp(port).catch((error) => report({error: String(error)}));
});
