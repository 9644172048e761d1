#!/usr/bin/env bash
# nginx in front of gunicorn: the production deployment's buffering proxy (README "Production
# deployment"), also started by tests/e2e/test_slow_clients.py.
#
#   scripts/nginx.sh install                          Debian's nginx with apt-get, when it is missing
#   scripts/nginx.sh config LISTEN UPSTREAM DIR       render deploy/nginx.conf.template to DIR/nginx.conf
#   scripts/nginx.sh run    LISTEN UPSTREAM DIR       render it and run nginx in the foreground
#   scripts/nginx.sh start  LISTEN UPSTREAM DIR       render it and start nginx in the background
#   scripts/nginx.sh stop   DIR                       stop that nginx gracefully
#
# LISTEN is a port or address:port (default 80), UPSTREAM gunicorn's address:port (default
# 127.0.0.1:8000), DIR where the rendered config, pid, logs and temp files go (default
# /var/lib/bots-nginx). The body cap follows WEBHOOK_MAX_BYTES (1 MiB). NGINX_TLS_CERT and
# NGINX_TLS_KEY (PEM files) make it listen with TLS; NGINX_USER names the worker user when run as
# root (default www-data, which Debian's package creates).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEMPLATE="$ROOT/deploy/nginx.conf.template"

die() { echo "error: $*" >&2; exit 1; }

nginx_bin() {
  command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || return 1
}

# Install Debian's nginx unless it is there; never prompts (sudo -n when not root).
install_nginx() {
  nginx_bin >/dev/null && return 0
  echo "installing Debian's nginx (apt-get)..."
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo -n"; fi
  $sudo apt-get install -y -q nginx >/dev/null 2>&1 ||
    { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q nginx >/dev/null 2>&1; } ||
    die "could not install nginx with apt-get; the production proxy and tests/e2e/test_slow_clients.py need it"
  # The package starts a system nginx on :80 where it can; this script runs its own.
  nginx_bin >/dev/null
}

# Render the template for LISTEN, UPSTREAM and DIR, and create DIR's logs and temp directories.
render() {
  local listen="$1" upstream="$2" dir="$3" max_body="${WEBHOOK_MAX_BYTES:-1048576}"
  local user="${NGINX_USER:-www-data}" tls="# plain HTTP: set NGINX_TLS_CERT and NGINX_TLS_KEY for HTTPS"
  [[ "$listen" =~ ^[][0-9A-Za-z.:]+$ ]] || die "LISTEN must be a port or address:port, not '$listen'"
  [[ "$upstream" =~ ^[][0-9A-Za-z.:-]+$ ]] || die "UPSTREAM must be address:port, not '$upstream'"
  [[ "$dir" =~ ^/[A-Za-z0-9._/-]+$ ]] || die "DIR must be an absolute path of letters, digits, . _ - /"
  [[ "$max_body" =~ ^[0-9]+$ ]] || die "WEBHOOK_MAX_BYTES must be a number of bytes"
  [[ "$user" =~ ^[a-z_][a-z0-9_-]*$ ]] || die "NGINX_USER must be a user name"
  if [ -n "${NGINX_TLS_CERT:-}" ] || [ -n "${NGINX_TLS_KEY:-}" ]; then
    [ -r "${NGINX_TLS_CERT:-}" ] && [ -r "${NGINX_TLS_KEY:-}" ] || die "NGINX_TLS_CERT and NGINX_TLS_KEY must both be readable files"
    [[ "$NGINX_TLS_CERT" =~ ^/[A-Za-z0-9._/-]+$ && "$NGINX_TLS_KEY" =~ ^/[A-Za-z0-9._/-]+$ ]] || die "NGINX_TLS_CERT and NGINX_TLS_KEY must be absolute paths of letters, digits, . _ - /"
    listen="$listen ssl"
    tls="ssl_certificate $NGINX_TLS_CERT; ssl_certificate_key $NGINX_TLS_KEY; ssl_protocols TLSv1.2 TLSv1.3;"
  fi
  mkdir -p "$dir/logs" "$dir"/temp/{client_body,proxy,fastcgi,uwsgi,scgi}
  local user_line="s|@USER@|$user|"
  if [ "$(id -u)" -eq 0 ]; then
    # Workers run as $user: they must reach DIR and write the temp files of large bodies.
    chmod 755 "$dir"
    chown -R "$user" "$dir/temp"
  else
    user_line="/^user @USER@;$/d"  # only root can switch users; nginx would warn
  fi
  sed -e "$user_line" -e "s|@LISTEN@|$listen|" -e "s|@UPSTREAM@|$upstream|" -e "s|@DIR@|$dir|g" \
      -e "s|@MAX_BODY@|$max_body|g" -e "s|@TLS@|$tls|" "$TEMPLATE" >"$dir/nginx.conf"
  echo "$dir/nginx.conf"
}

# nginx's own flags for DIR: its prefix, rendered config, and start-up errors in DIR's error log.
flags() {
  echo "-p $1/ -e $1/logs/error.log -c $1/nginx.conf"
}

main() {
  local command="${1:-}" listen="${2:-80}" upstream="${3:-127.0.0.1:8000}" dir="${4:-/var/lib/bots-nginx}"
  case "$command" in
    install) install_nginx ;;
    config) render "$listen" "$upstream" "$dir" ;;
    run)
      install_nginx
      render "$listen" "$upstream" "$dir" >/dev/null
      # shellcheck disable=SC2046
      exec "$(nginx_bin)" $(flags "$dir") -g "daemon off;" ;;
    start)
      install_nginx
      render "$listen" "$upstream" "$dir" >/dev/null
      # shellcheck disable=SC2046
      "$(nginx_bin)" $(flags "$dir") ;;
    stop)
      dir="${2:-/var/lib/bots-nginx}"
      # shellcheck disable=SC2046
      "$(nginx_bin)" $(flags "$dir") -s quit ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; [ "$command" = help ] || exit 2 ;;
  esac
}

main "$@"
