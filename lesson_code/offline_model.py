"""A deterministic, offline stand-in for an LLM that drives the shopping MCP server.

Why it exists: the lesson is about securing an MCP server, and every learner must be
able to run the agent end to end, including with no OpenAI key and no network. This
model implements the Agents SDK's `Model` interface, so the real `Agent`/`Runner`
machinery runs unchanged: tools are listed from the MCP server, called over HTTP with
the API key, and refused exactly as they would be for a real model.

How it works: it parses the latest user message with a small grammar (see
`OFFLINE_GRAMMAR_HELP`) into an ordered plan of tool calls, then on each model turn
counts the tool outputs already in the conversation and emits the next call, one per
turn. When the plan is done it writes the answer from the tools' real results. A
failed step stops the plan, because every step builds on the list the earlier ones
produced (an order must not go out for a list that is not what the user asked for).

The SDK's own `agents.testing.ScriptedModel` turns each decided output item into a
`ModelResponse` for `Runner.run`. For `Runner.run_streamed` (the demo, the notebooks'
agent) this module builds the same Responses events ScriptedModel would stream, field
for field, but with pydantic's `model_construct`: ScriptedModel validates each event,
and the first validation of a `Response` and of the output-item events makes pydantic
build their validators (the Responses API's whole union of tools and output items),
about 0.1 s of CPU in every new process, for values that are ours and valid by
construction. The Agents SDK reads these events' attributes and does not validate
them again; tests/test_offline_model.py checks the events against ScriptedModel's.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai
from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import ModelResponse, TResponseInputItem, TResponseOutputItem, TResponseStreamEvent
from agents.model_settings import ModelSettings
from agents.models.interface import Model, ModelTracing
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.tool import Tool
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
)
from openai.types.responses.response_prompt_param import ResponsePromptParam
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from lesson_code.text import join_words, shorten
from lesson_code.tool_output import parse_tool_output

__all__ = [
    "ANSWER_MARKER",
    "OFFLINE_GRAMMAR_HELP",
    "OfflineShoppingModel",
    "PlannedCall",
    "plan_from_text",
    "stream_events",
]

ANSWER_MARKER = "[offline model] "

_Model = TypeVar("_Model", bound=openai.BaseModel)

OFFLINE_GRAMMAR_HELP = """\
The offline stand-in model understands a small grammar (not free English):
  add <qty> <item>, <qty> <item> and <qty> <item> [to my list]   -> add_item per item
  remove [<qty>] <item> [from my list]                          -> remove_item
  show my list                                                  -> list_items
  show my orders                                                -> list_orders
  place the order  (or: make the order, order)                  -> place_order
Quantities: digits, one..twelve, a dozen, a/an/some (= 1), "a loaf of", "2 bottles of".
Join requests with ",", ";", ".", "then" or "and then", e.g.
  Add 2 apples, a loaf of bread and milk to my list, show me the list, then place the order."""

# Error texts as they reach the model: the Agents SDK's default tool-failure message
# ("An error occurred while running the tool..."), the MCP SDK's "Error executing tool
# <name>: ..." for tools that raised, and plain refusals a server may send.
_ERROR_PREFIXES = ("an error occurred", "error", "unauthorized", "forbidden", "permission denied", "not allowed")

_NUMBER_WORDS = {
    "a": 1, "an": 1, "some": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "dozen": 12, "a dozen": 12,
}  # fmt: skip

_SEPARATORS = re.compile(r"\s*(?:,\s*(?:and\s+)?then\b|\band\s+then\b|\bthen\b|[,;.!?]|\band\b)\s*", re.IGNORECASE)
_FILLER_PREFIX = re.compile(r"^(?:(?:please|also|now|finally|and|then|could you|can you|would you)\s+)+")
_FILLER_SUFFIX = re.compile(r"\s+(?:please|for me|now)$")
_ADD = re.compile(r"^(?:add|put)\s+(?P<rest>.+)$")
_REMOVE = re.compile(r"^(?:remove|delete|drop|take)\s+(?P<rest>.+)$")
_SHOW = r"^(?:show|list|display|view|see|check|read|what'?s on|what is on)\b"
_LIST_ORDERS = re.compile(_SHOW + r".*\borders?\b")
_LIST_ITEMS = re.compile(_SHOW + r".*\b(?:list|items)\b|^list$")
_PLACE_ORDER = re.compile(
    r"^(?:place|make|submit|send|confirm)\b.*\border\b"
    r"|^(?:order|check\s*out|checkout)(?:\s+(?:it|them|everything|all|now|the list|my list))*$"
)
_LIST_SUFFIX = re.compile(
    r"\s+(?:to|onto|on|from|off|off of|in|into)\s+(?:my|the)\s+(?:shopping\s+)?(?:list|cart|basket)$"
)
_ARTICLE = re.compile(r"^(?P<all>all\s+(?:of\s+)?)?(?:the|my)\s+")
_QUANTITY = re.compile(
    r"^(?P<qty>\d+|a dozen|dozen|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|an?|some)"
    r"\s+(?P<rest>.+)$"
)
_UNIT = re.compile(
    r"^(?:loaf|loaves|bottles?|bags?|box(?:es)?|cartons?|packs?|packets?|jars?|cans?|tins?|bunch(?:es)?|bars?"
    r"|heads?|pieces?)\s+of\s+(?P<rest>.+)$"
)


@dataclass(frozen=True)
class PlannedCall:
    """One step of the plan: which MCP tool to call, with which arguments."""

    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.arguments.items())
        return f"{self.tool}({args})"


def plan_from_text(text: str) -> list[PlannedCall]:
    """The ordered tool calls a request asks for; empty if any part of it is not understood.

    All-or-nothing on purpose: doing half of a request that was misread is worse than
    doing none of it and explaining the grammar.
    """
    plan, not_understood = _parse_request(text)
    return [] if not_understood else plan


class OfflineShoppingModel(Model):
    """A `Model` that plans tool calls from a tiny grammar instead of calling an LLM.

    Stateless: everything it needs is in the conversation `input` and the `tools` it is given,
    so one instance can serve any number of runs. It only ever calls tools that the MCP server
    actually listed for this key; if the plan needs one that is missing, it says so instead.
    """

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        return await self._scripted_turn(input, tools).get_response(
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,
            handoffs,
            tracing,
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            prompt=prompt,
        )

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        output, response_id = self._turn(input, tools)
        for event in stream_events(output, response_id):
            yield event

    def _scripted_turn(self, input: str | list[TResponseInputItem], tools: list[Tool]) -> ScriptedModel:
        """A one-step `ScriptedModel` holding this turn's decision; it does the wire format."""
        output, response_id = self._turn(input, tools)
        return ScriptedModel([ModelStep(output=[output], response_id=response_id)])

    def _turn(self, input: str | list[TResponseInputItem], tools: list[Tool]) -> tuple[TResponseOutputItem, str]:
        """This turn's output item (the next tool call or the answer) and its response id."""
        conversation = _Conversation.read(input)
        turn = conversation.calls_so_far + 1
        available = {name for name in (getattr(tool, "name", None) for tool in tools) if name}
        return _decide(conversation, available, turn), f"offline-response-{turn}"


# --- The stream of one turn ------------------------------------------------------------


def stream_events(item: TResponseOutputItem, response_id: str) -> list[TResponseStreamEvent]:
    """The Responses events ScriptedModel streams for a turn with this one output item, built unvalidated.

    The same events in the same order with the same fields as `agents.testing.model._stream_events_for_step`
    for a function call or an assistant message with text (the two items this model emits), each built
    with `model_construct` from values that are already valid: the item was validated when it was made.
    """
    if not isinstance(item, ResponseFunctionToolCall | ResponseOutputMessage):
        raise TypeError(f"the offline model streams tool calls and messages, not {type(item).__name__}")
    events: list[Any] = []

    def emit(event: type[openai.BaseModel], event_type: str, **fields: Any) -> None:
        events.append(_unvalidated(event, type=event_type, sequence_number=len(events), **fields))

    response = _response(response_id, [item], "completed", _zero_usage())
    in_progress = response.model_copy(update={"output": [], "status": "in_progress", "usage": None})
    emit(ResponseCreatedEvent, "response.created", response=copy.deepcopy(in_progress))
    emit(ResponseInProgressEvent, "response.in_progress", response=copy.deepcopy(in_progress))
    if isinstance(item, ResponseFunctionToolCall):
        started_call = item.model_copy(update={"arguments": "", "status": "in_progress"})
        emit(
            ResponseOutputItemAddedEvent, "response.output_item.added", item=copy.deepcopy(started_call), output_index=0
        )
        item_id = item.call_id if item.id is None else item.id
        emit(
            ResponseFunctionCallArgumentsDeltaEvent,
            "response.function_call_arguments.delta",
            item_id=item_id,
            output_index=0,
            delta=item.arguments,
        )
        # The SDK passes the name too: older openai models require it, newer ones keep it as an extra.
        emit(
            ResponseFunctionCallArgumentsDoneEvent,
            "response.function_call_arguments.done",
            item_id=item_id,
            output_index=0,
            arguments=item.arguments,
            name=item.name,
        )
    else:
        started_message = item.model_copy(update={"content": [], "status": "in_progress"})
        emit(
            ResponseOutputItemAddedEvent,
            "response.output_item.added",
            item=copy.deepcopy(started_message),
            output_index=0,
        )
        for index, part in enumerate(item.content):
            if not isinstance(part, ResponseOutputText) or part.annotations or part.logprobs:
                raise TypeError("the offline model's messages are plain text")
            where: dict[str, Any] = {"item_id": item.id, "output_index": 0, "content_index": index}
            empty = part.model_copy(deep=True, update={"annotations": [], "logprobs": [], "text": ""})
            emit(ResponseContentPartAddedEvent, "response.content_part.added", **where, part=empty)
            emit(ResponseTextDeltaEvent, "response.output_text.delta", **where, delta=part.text, logprobs=[])
            emit(ResponseTextDoneEvent, "response.output_text.done", **where, text=part.text, logprobs=[])
            emit(ResponseContentPartDoneEvent, "response.content_part.done", **where, part=copy.deepcopy(part))
    emit(ResponseOutputItemDoneEvent, "response.output_item.done", item=copy.deepcopy(item), output_index=0)
    emit(ResponseCompletedEvent, "response.completed", response=response)
    return events


def _response(response_id: str, output: list[TResponseOutputItem], status: str, usage: ResponseUsage) -> Response:
    """The `Response` ScriptedModel makes for a step (`_response_for_step`), unvalidated."""
    return _unvalidated(
        Response,
        id=response_id,
        created_at=0.0,
        model="scripted-model",
        object="response",
        output=output,
        tool_choice="none",
        tools=[],
        top_p=None,
        parallel_tool_calls=False,
        status=status,
        usage=usage,
    )


def _zero_usage() -> ResponseUsage:
    """No tokens: what ScriptedModel reports for a step without usage (the SDK then counts one request)."""
    return _unvalidated(
        ResponseUsage,
        input_tokens=0,
        output_tokens=0,
        total_tokens=0,
        input_tokens_details=_unvalidated(InputTokensDetails, cache_write_tokens=0, cached_tokens=0),
        output_tokens_details=_unvalidated(OutputTokensDetails, reasoning_tokens=0),
    )


def _unvalidated(model: type[_Model], /, **fields: Any) -> _Model:
    """`model(**fields)` without validation: pydantic's own `model_construct`.

    Not openai's override of it (`openai.BaseModel.construct`, which also parses nested dicts into
    models): that reads the class's core schema to type any extra fields, which makes pydantic build
    the very validators this avoids. Our fields hold models and plain values, no dicts to parse.
    """
    return super(openai.BaseModel, model).model_construct(**fields)


@dataclass
class _Conversation:
    """What the model needs from the input: the latest request and the tool calls answering it."""

    request: str = ""
    done: list[tuple[PlannedCall, Any]] = field(default_factory=list)
    calls_so_far: int = 0

    @classmethod
    def read(cls, input: str | list[TResponseInputItem]) -> _Conversation:
        if isinstance(input, str):
            return cls(request=input)
        conversation = cls()
        calls: dict[str, PlannedCall] = {}
        for raw in input:
            # Input items are a union of many TypedDicts (or models); read them as plain dicts.
            item: dict[str, Any] = dict(raw) if isinstance(raw, dict) else raw.model_dump()
            if item.get("role") == "user":
                # A new request: earlier tool calls answered an earlier request.
                conversation.request, conversation.done = _message_text(item.get("content")), []
            elif item.get("type") == "function_call":
                conversation.calls_so_far += 1
                arguments = _json_or_text(str(item.get("arguments") or "{}"))
                calls[str(item["call_id"])] = PlannedCall(
                    str(item["name"]), arguments if isinstance(arguments, dict) else {}
                )
            elif item.get("type") == "function_call_output" and item.get("call_id") in calls:
                conversation.done.append((calls[str(item["call_id"])], item.get("output")))
        return conversation


def _decide(conversation: _Conversation, available: set[str], turn: int) -> TResponseOutputItem:
    """This turn's single output item: the next tool call, or the final answer."""
    plan, not_understood = _parse_request(conversation.request)
    if not_understood or not plan:
        reason = f"I did not understand {not_understood[0]!r}. " if not_understood else ""
        return _answer(reason + OFFLINE_GRAMMAR_HELP, turn)

    done = conversation.done
    remaining = plan[len(done) :]
    if done and _is_error(done[-1][1]):
        return _answer(_summary(done, remaining), turn)
    missing = sorted({step.tool for step in remaining} - available)
    if missing:
        # Checked before the first call, so a request is never left half done for this reason.
        offered = ", ".join(sorted(available)) or "no tools at all"
        problem = (
            f"The server does not offer {join_words(missing)} to this key (it offers: {offered}), "
            f"so I did not {join_words([_human(step) for step in remaining])}."
        )
        return _answer(_summary(done, [], problem), turn)
    if remaining:
        step = remaining[0]
        return function_call(step.tool, step.arguments, call_id=f"call_{turn}")
    return _answer(_summary(done, []), turn)


def _answer(text: str, turn: int) -> TResponseOutputItem:
    return assistant_message(ANSWER_MARKER + text, item_id=f"offline-message-{turn}")


# --- Parsing the request -------------------------------------------------------------


def _parse_request(text: str) -> tuple[list[PlannedCall], list[str]]:
    """(plan, fragments not understood) for one request."""
    plan: list[PlannedCall] = []
    not_understood: list[str] = []
    previous_verb: str | None = None
    for raw_piece in _SEPARATORS.split(text.strip()):
        piece = _FILLER_SUFFIX.sub("", _FILLER_PREFIX.sub("", " ".join(raw_piece.lower().split())))
        if not piece:
            continue
        step: PlannedCall | None
        if _LIST_ORDERS.match(piece):
            step, previous_verb = PlannedCall("list_orders"), None
        elif _LIST_ITEMS.match(piece):
            step, previous_verb = PlannedCall("list_items"), None
        elif _PLACE_ORDER.match(piece):
            step, previous_verb = PlannedCall("place_order"), None
        elif match := _ADD.match(piece):
            previous_verb = "add"
            step = _item_call("add_item", match["rest"])
        elif match := _REMOVE.match(piece):
            previous_verb = "remove"
            step = _item_call("remove_item", match["rest"])
        elif previous_verb is not None:
            # "Add 2 apples, a loaf of bread and milk": later items continue the same verb.
            step = _item_call(f"{previous_verb}_item", piece)
        else:
            step = None
        if step is None:
            not_understood.append(raw_piece.strip())
        else:
            plan.append(step)
    return plan, not_understood


def _item_call(tool: str, phrase: str) -> PlannedCall | None:
    """add_item/remove_item for one item phrase such as "a loaf of bread to my list"."""
    phrase = _LIST_SUFFIX.sub("", phrase).strip()
    quantity: int | None = None
    if article := _ARTICLE.match(phrase):
        if article["all"] and tool == "add_item":
            return None
        phrase = phrase[article.end() :]
    elif match := _QUANTITY.match(phrase):
        word, phrase = match["qty"], match["rest"]
        quantity = int(word) if word.isdigit() else _NUMBER_WORDS[word]
        if unit := _UNIT.match(phrase):
            phrase = unit["rest"]
    name = phrase.strip(" '\"")
    if not name or quantity == 0:
        return None
    if tool == "add_item":
        return PlannedCall(tool, {"name": name, "quantity": quantity or 1})
    return PlannedCall(tool, {"name": name} if quantity is None else {"name": name, "quantity": quantity})


# --- Writing the answer from the tools' results --------------------------------------


def _summary(done: list[tuple[PlannedCall, Any]], remaining: list[PlannedCall], problem: str | None = None) -> str:
    """The final answer: what each tool reported, what failed, and what was skipped."""
    sentences: list[str] = []
    added: list[str] = []
    for step, output in done:
        if step.tool == "add_item" and not _is_error(output):
            added.append(_quantity_name(step.arguments.get("quantity", 1), step.arguments.get("name")))
            continue
        if added:
            sentences.append(f"Added {join_words(added)} to your list.")
            added = []
        sentences.append(_result_sentence(step, output))
    if added:
        sentences.append(f"Added {join_words(added)} to your list.")
    if problem:
        sentences.append(problem)
    if remaining:
        sentences.append(f"I stopped there and did not {join_words([_human(step) for step in remaining])}.")
    return " ".join(sentences) or "There was nothing to do."


def _result_sentence(step: PlannedCall, output: Any) -> str:
    if _is_error(output):
        return f"The call {step} failed: {_short(_output_text(output))}"
    value = parse_tool_output(output)
    if step.tool == "remove_item":
        amount = step.arguments.get("quantity")
        what = step.arguments.get("name") if amount is None else _quantity_name(amount, step.arguments.get("name"))
        return f"Removed {what} from your list."
    if step.tool == "list_items":
        items = _items_phrase(value)
        if items is None:
            return f"list_items returned: {_short(_output_text(output))}"
        return f"Your list: {items}." if items else "Your list is empty."
    if step.tool == "place_order":
        return _order_sentence(value, output)
    if step.tool == "list_orders":
        orders = value.get("orders") if isinstance(value, dict) else None
        if isinstance(orders, list):
            if not orders:
                return "You have no orders yet."
            return "Your orders: " + "; ".join(_order_phrase(order) for order in orders) + "."
    return f"{step.tool} returned: {_short(_output_text(output))}"


def _order_sentence(value: Any, output: Any) -> str:
    if isinstance(value, dict) and _order_id(value):
        return f"Placed order {_order_phrase(value)}."
    return f"Placed the order; the server said: {_short(_output_text(output))}"


def _order_phrase(order: Any) -> str:
    if not isinstance(order, dict):
        return json.dumps(order, ensure_ascii=False)
    items = _items_phrase(order.get("items"))
    return f"{_order_id(order) or 'without an id'}" + (f" for {items}" if items else "")


def _order_id(order: dict[str, Any]) -> str | None:
    order_id = order.get("order_id")
    return str(order_id) if order_id not in (None, "") else None


def _items_phrase(value: Any) -> str | None:
    """ "2 × apples, 1 × bread and 1 × milk" from `{"items": [...]}` or a list of items; "" when empty.

    The shapes are the shopping server's own (`lesson_code.store.Item`); None for anything else.
    """
    if isinstance(value, dict) and "items" in value:
        value = value["items"]
    if not isinstance(value, list):
        return None
    phrases = []
    for entry in value:
        if not (isinstance(entry, dict) and entry.get("name")):
            return None
        phrases.append(_quantity_name(entry.get("quantity", 1), entry["name"]))
    return join_words(phrases)


def _human(step: PlannedCall) -> str:
    if step.tool == "add_item":
        return f"add {_quantity_name(step.arguments.get('quantity', 1), step.arguments.get('name'))}"
    if step.tool == "remove_item":
        return f"remove {step.arguments.get('name')}"
    return {"list_items": "show the list", "list_orders": "show the orders", "place_order": "place the order"}.get(
        step.tool, f"call {step.tool}"
    )


# --- Small helpers -------------------------------------------------------------------


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _output_text(output: Any) -> str:
    value = parse_tool_output(output)
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _is_error(output: Any) -> bool:
    value = parse_tool_output(output)
    if isinstance(value, dict):
        # {"error": ...}, a JSON-RPC error object, or a serialised CallToolResult with isError.
        return "error" in value or value.get("isError") is True or {"code", "message"} <= value.keys()
    return isinstance(value, str) and value.strip().lower().startswith(_ERROR_PREFIXES)


def _quantity_name(quantity: Any, name: Any) -> str:
    return f"{quantity} × {name}"


def _short(text: str, limit: int = 200) -> str:
    """One line of at most `limit` characters, ending like a sentence."""
    text = shorten(text, limit)
    return text if text.endswith((".", "!", "?", "…")) else text + "."
