"""Ticket flows: a state machine per ticket type that hands a ticket between departments.

A flow (`TicketFlow`) has stages, each owned by a team with its own SLA and implying a ticket status,
and transitions between them that only some roles or teams may fire. A ticket of a type with an
active flow enters the initial stage when it is created; `services.do_transition` moves it. See
docs/ticket-flows.md."""
