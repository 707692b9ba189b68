"""Every write of the service desk (tickets, returns, surveys, SLA checks), one module per use case."""

from .returns import do_request_return, do_set_return_status
from .surveys import do_answer_survey, do_send_nps
from .tickets import (
    do_add_comment,
    do_create_ticket,
    do_customer_reply,
    do_define_ticket_field,
    do_link_conversation,
    do_merge_tickets,
    do_set_ticket_status,
    do_set_watching,
    do_update_ticket,
)

__all__ = [
    "do_add_comment",
    "do_answer_survey",
    "do_create_ticket",
    "do_customer_reply",
    "do_define_ticket_field",
    "do_link_conversation",
    "do_merge_tickets",
    "do_request_return",
    "do_send_nps",
    "do_set_return_status",
    "do_set_ticket_status",
    "do_set_watching",
    "do_update_ticket",
]
