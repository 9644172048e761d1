"""The helpdesk example, tested the way a bot author tests a bot: with ``bots.testing.BotTester``."""

from __future__ import annotations

import pytest

from bots.testing import BotTester
from handlers.helpdesk import bot


@pytest.fixture
def helpdesk() -> BotTester:
    return BotTester(bot)


def test_help_shows_the_menu(helpdesk):
    helpdesk.message("help")
    assert helpdesk.replies[-1].text == "What do you need?"
    assert helpdesk.replies[-1].quick_reply_titles == ["Printer", "Laptop", "Access", "Talk to a human"]


def test_get_started_greets_with_the_menu(helpdesk):
    helpdesk.postback("GET_STARTED", "Get Started")
    assert helpdesk.replies[-1].text.startswith("Hi, I'm the IT helpdesk")


def test_printer_flow_asks_the_floor_then_the_problem_then_opens_a_ticket(helpdesk):
    helpdesk.quick_reply("PRINTER", "Printer")
    assert helpdesk.replies[-1].quick_reply_titles == ["Floor 1", "Floor 2", "Floor 3", "Floor 4"]
    helpdesk.quick_reply("FLOOR_3", "Floor 3")
    assert helpdesk.replies[-1].text.startswith("What is wrong with it?")
    helpdesk.message("paper jam again")
    assert "printer on floor 3" in helpdesk.replies[-1].text
    assert '"paper jam again"' in helpdesk.replies[-1].text
    assert "Ticket HD-" in helpdesk.replies[-1].text
    helpdesk.message("thanks!")
    assert helpdesk.replies[-1].text.startswith("Sorry, I did not get that")


def test_the_printer_flow_is_kept_per_person_and_can_be_cancelled(helpdesk):
    helpdesk.quick_reply("PRINTER", "Printer")
    helpdesk.quick_reply("FLOOR_1", "Floor 1")
    helpdesk.message("smoke coming out", sender="100079999")
    assert helpdesk.replies[-1].text.startswith("Sorry, I did not get that")
    helpdesk.message("cancel")
    assert helpdesk.replies[-1].text == "Cancelled: no ticket was opened."
    helpdesk.message("cancel")
    assert helpdesk.replies[-1].text == "There is nothing to cancel."


def test_access_request_names_the_system(helpdesk):
    helpdesk.message("access payroll")
    assert "access to payroll was requested" in helpdesk.replies[-1].text


def test_answers_in_the_group_chat_it_was_asked_in(helpdesk):
    helpdesk.message("help", thread="t_4455")
    assert helpdesk.replies[-1].recipient == {"thread_key": "t_4455"}


def test_a_mention_gets_a_comment(helpdesk):
    helpdesk.mention("@IT Helpdesk the wifi is down on floor 2", post_id="77_88")
    assert helpdesk.comments == [("77_88", "On it. For anything private, message me directly and type 'help'.")]


def test_a_comment_tagged_it_becomes_a_ticket(helpdesk):
    helpdesk.change("group", "comments", {"verb": "add", "comment_id": "c9", "post_id": "p1",
                                          "message": "VPN broken #IT", "from": {"id": "5"}})
    assert helpdesk.comments[-1][0] == "c9" and "ticket HD-" in helpdesk.comments[-1][1]


def test_anything_else_gets_a_pointer_to_help(helpdesk):
    helpdesk.message("what's for lunch?")
    assert "Type 'help'" in helpdesk.replies[-1].text


def test_a_passing_graph_fault_is_retried_and_the_person_gets_the_menu(helpdesk):
    helpdesk.graph.fail_next("(#2) Service temporarily unavailable", code=2, status=503)
    helpdesk.message("help")
    assert [r.text for r in helpdesk.replies] == ["What do you need?", "What do you need?"]
    assert len(helpdesk.calls) == 2


def test_on_the_in_memory_inbox_a_failed_send_is_apologised_for():
    helpdesk = BotTester(bot, settings={"INBOX": "memory"})
    helpdesk.graph.fail_next("(#100) Invalid parameter", code=100, status=400)
    helpdesk.message("help")
    assert helpdesk.replies[-1].text.startswith("Something went wrong on my side")


def test_on_the_durable_inbox_a_refused_send_is_a_dead_letter_and_no_apology(helpdesk):
    helpdesk.graph.fail_next("(#100) Invalid parameter", code=100, status=400)
    helpdesk.message("help")
    [letter] = helpdesk.dead_letters
    assert "(#100) Invalid parameter" in letter["error"]
    assert not any(reply.text and reply.text.startswith("Something went wrong") for reply in helpdesk.replies)
