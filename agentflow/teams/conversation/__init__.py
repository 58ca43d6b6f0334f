"""Conversations between agents: a UserProxy steering an Assistant, and group chats with a manager.

Every participant is an ordinary `Agent` taking turns. A turn is one run of it on what the
others said since it last spoke, continuing its own history (its tool calls stay its own): a
text reply is its message, and a participant allowed to conclude may call `finish` with a
`Verdict` instead, which ends the conversation. Limits bound the whole conversation. An
exchange that goes stale (farewells, near-repeats, empty replies: the book's endless "Goodbye!
Thanks again." / "You bet!") is stopped: a participant that may conclude is asked once to give
its verdict, and if it does not, the conversation ends with `stop_reason="repetition"`. A
first verdict of "not met" with turns left goes to the others as a message instead (see
`Chat.too_soon`).
"""

from .group import GroupChat, PickFunction, Rule
from .pair import Conversation, UserProxy
from .records import ConversationResult, SpeakerChosen, Stop, Turn, Verdict

__all__ = ["Conversation", "ConversationResult", "GroupChat", "PickFunction", "Rule", "SpeakerChosen", "Stop", "Turn",
           "UserProxy", "Verdict"]
