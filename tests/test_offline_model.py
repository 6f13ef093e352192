"""Tests for the offline stand-in model: the grammar, the turn-by-turn decisions, the answer.

The model is driven by the real Agents SDK `Runner` with local function tools over the
course's real `ShoppingStore`, returning exactly what the shopping server's tools return
(`lesson_code.shopping_server`), so these tests need no MCP server and no network, and the
model is never tested against result shapes the server does not send.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

from agents import Agent, ModelSettings, Runner, Tool, function_tool
from agents.items import ToolCallItem, TResponseOutputItem, TResponseStreamEvent
from agents.models.interface import ModelTracing
from agents.result import RunResultStreaming
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from lesson_code.offline_model import (
    ANSWER_MARKER,
    OFFLINE_GRAMMAR_HELP,
    OfflineShoppingModel,
    PlannedCall,
    plan_from_text,
    stream_events,
)
from lesson_code.store import ShoppingStore
from lesson_code.tool_output import parse_tool_output

pytestmark = pytest.mark.anyio

CANONICAL = "Add 2 apples, a loaf of bread and milk to my list, show me the list, then place the order."


def add(name: str, quantity: int) -> PlannedCall:
    return PlannedCall("add_item", {"name": name, "quantity": quantity})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            CANONICAL,
            [add("apples", 2), add("bread", 1), add("milk", 1), PlannedCall("list_items"), PlannedCall("place_order")],
        ),
        ("add milk", [add("milk", 1)]),
        ("Add three eggs and a dozen bananas", [add("eggs", 3), add("bananas", 12)]),
        ("add some cheese; add 2 bottles of water to the shopping list", [add("cheese", 1), add("water", 2)]),
        ("Add 2 Apples", [add("apples", 2)]),
        ("remove the milk", [PlannedCall("remove_item", {"name": "milk"})]),
        ("remove 2 apples from my list", [PlannedCall("remove_item", {"name": "apples", "quantity": 2})]),
        ("show my list", [PlannedCall("list_items")]),
        ("What's on my list?", [PlannedCall("list_items")]),
        ("show my orders", [PlannedCall("list_orders")]),
        ("list my orders", [PlannedCall("list_orders")]),
        ("order", [PlannedCall("place_order")]),
        ("Make the order please", [PlannedCall("place_order")]),
        (
            "please add an onion. then show me the list and then order.",
            [add("onion", 1), PlannedCall("list_items"), PlannedCall("place_order")],
        ),
        (
            "add milk then remove 1 milk and show my list",
            [add("milk", 1), PlannedCall("remove_item", {"name": "milk", "quantity": 1}), PlannedCall("list_items")],
        ),
    ],
)
def test_plan_from_text(text: str, expected: list[PlannedCall]) -> None:
    assert plan_from_text(text) == expected


@pytest.mark.parametrize(
    "text", ["", "what's the weather", "add", "add 0 apples", "show my list, then dance", "add all the milk"]
)
def test_text_outside_the_grammar_gives_no_plan(text: str) -> None:
    assert plan_from_text(text) == []


def test_planned_call_prints_like_a_call() -> None:
    assert str(add("apples", 2)) == "add_item(name='apples', quantity=2)"
    assert str(PlannedCall("list_items")) == "list_items()"


@pytest.mark.parametrize(
    ("output", "value"),
    [
        ('{"items": [{"name": "milk", "quantity": 1}]}', {"items": [{"name": "milk", "quantity": 1}]}),
        ([{"type": "input_text", "text": '{"a": 1}'}], {"a": 1}),
        ({"type": "text", "text": "plain words"}, "plain words"),
        ([{"type": "text", "text": "1"}, {"type": "text", "text": "2"}], [1, 2]),
        ([], []),
    ],
)
def test_parse_tool_output(output: Any, value: Any) -> None:
    assert parse_tool_output(output) == value


class FakeShop:
    """Local tools with the shopping server's names, over a real `ShoppingStore`; records every call.

    Each tool returns what the server's tool of that name returns: an item for add/remove,
    `{"items": [...]}`, an order, and `{"orders": [...]}`.
    """

    def __init__(self, folder: Path, *, fail: str | None = None) -> None:
        self.store = ShoppingStore(folder / "shop.sqlite3")
        self.calls: list[str] = []
        self.fail = fail

    def tools(self, names: set[str] | None = None) -> list[Tool]:
        shop, store = self, self.store

        def record(name: str) -> None:
            shop.calls.append(name)
            if name == shop.fail:
                raise RuntimeError("the shop is closed")

        @function_tool
        def add_item(name: str, quantity: int = 1) -> str:
            """Add an item to the list."""
            record("add_item")
            return json.dumps(store.add_item(name, quantity))

        @function_tool
        def remove_item(name: str, quantity: int | None = None) -> str:
            """Remove an item from the list."""
            record("remove_item")
            return json.dumps(store.remove_item(name, quantity))

        @function_tool
        def list_items() -> str:
            """Show the list."""
            record("list_items")
            return json.dumps({"items": store.list_items()})

        @function_tool
        def place_order() -> str:
            """Order everything on the list."""
            record("place_order")
            return json.dumps(store.place_order())

        @function_tool
        def list_orders() -> str:
            """Show past orders."""
            record("list_orders")
            return json.dumps({"orders": store.list_orders()})

        tools = [add_item, remove_item, list_items, place_order, list_orders]
        return [tool for tool in tools if names is None or tool.name in names]

    def only_order_id(self) -> str:
        (order,) = self.store.list_orders()
        return order["order_id"]


def agent_for(shop: FakeShop, names: set[str] | None = None) -> Agent:
    return Agent(name="shop", model=OfflineShoppingModel(), tools=shop.tools(names))


async def test_canonical_query_runs_every_step_and_answers_from_results(tmp_path: Path) -> None:
    shop = FakeShop(tmp_path)
    result = await Runner.run(agent_for(shop), CANONICAL)
    assert shop.calls == ["add_item", "add_item", "add_item", "list_items", "place_order"]
    answer = result.final_output
    assert answer.startswith(ANSWER_MARKER)
    assert "Your list: 2 × apples, 1 × bread and 1 × milk." in answer
    assert f"Placed order {shop.only_order_id()} for 2 × apples, 1 × bread and 1 × milk." in answer
    call_ids = [item.call_id for item in result.new_items if isinstance(item, ToolCallItem)]
    assert call_ids == ["call_1", "call_2", "call_3", "call_4", "call_5"]


async def test_streamed_run_matches_the_plain_run(tmp_path: Path) -> None:
    shop = FakeShop(tmp_path)
    run = Runner.run_streamed(agent_for(shop), "add milk, then show my orders")
    names = [event.name async for event in run.stream_events() if event.type == "run_item_stream_event"]
    assert names == ["tool_called", "tool_output", "tool_called", "tool_output", "message_output_created"]
    assert run.final_output == f"{ANSWER_MARKER}Added 1 × milk to your list. You have no orders yet."


async def test_unknown_text_explains_the_grammar_and_calls_nothing(tmp_path: Path) -> None:
    shop = FakeShop(tmp_path)
    result = await Runner.run(agent_for(shop), "show my list, then dance")
    assert shop.calls == []
    assert result.final_output == f"{ANSWER_MARKER}I did not understand 'dance'. {OFFLINE_GRAMMAR_HELP}"


async def test_missing_tool_is_reported_instead_of_called(tmp_path: Path) -> None:
    shop = FakeShop(tmp_path)
    result = await Runner.run(agent_for(shop, {"list_items", "list_orders"}), CANONICAL)
    assert shop.calls == []
    assert "does not offer add_item and place_order" in result.final_output
    assert "it offers: list_items, list_orders" in result.final_output


async def test_a_failed_step_stops_the_plan(tmp_path: Path) -> None:
    shop = FakeShop(tmp_path, fail="list_items")
    result = await Runner.run(agent_for(shop), CANONICAL)
    assert shop.calls == ["add_item", "add_item", "add_item", "list_items"]
    answer = result.final_output
    assert "The call list_items() failed: An error occurred while running the tool" in answer
    assert answer.endswith("I stopped there and did not place the order.")


async def test_a_second_request_in_the_same_conversation_gets_fresh_call_ids(tmp_path: Path) -> None:
    shop = FakeShop(tmp_path)
    agent = agent_for(shop)
    first = await Runner.run(agent, "add milk")
    second = await Runner.run(agent, [*first.to_input_list(), {"role": "user", "content": "place the order"}])
    call_ids = [item.call_id for item in second.new_items if isinstance(item, ToolCallItem)]
    assert call_ids == ["call_2"]
    assert second.final_output == f"{ANSWER_MARKER}Placed order {shop.only_order_id()} for 1 × milk."


async def test_every_tool_result_shape_of_the_server_reads_back_in_the_answer(tmp_path: Path) -> None:
    shop = FakeShop(tmp_path)
    request = "add 2 apples and 3 pears, remove 1 apples, show my list, place the order, then show my orders"
    result = await Runner.run(agent_for(shop), request)
    order_id = shop.only_order_id()
    assert result.final_output == (
        f"{ANSWER_MARKER}Added 2 × apples and 3 × pears to your list. Removed 1 × apples from your list. "
        f"Your list: 1 × apples and 3 × pears. Placed order {order_id} for 1 × apples and 3 × pears. "
        f"Your orders: {order_id} for 1 × apples and 3 × pears."
    )


# --- The streamed events are ScriptedModel's, built without validation ----------------


async def scripted_stream(item: TResponseOutputItem, response_id: str) -> list[TResponseStreamEvent]:
    """What the SDK's ScriptedModel streams for a step with this one item."""
    model = ScriptedModel([ModelStep(output=[item], response_id=response_id)])
    stream = model.stream_response(
        None,
        "a request",
        ModelSettings(),
        [],
        None,
        [],
        ModelTracing.DISABLED,
        previous_response_id=None,
        conversation_id=None,
        prompt=None,
    )
    return [event async for event in stream]


@pytest.mark.parametrize(
    "item",
    [
        function_call("add_item", {"name": "milk", "quantity": 1}, call_id="call_1"),
        assistant_message(f"{ANSWER_MARKER}Added 1 × milk to your list.", item_id="offline-message-2"),
    ],
    ids=["tool call", "answer"],
)
async def test_the_stream_is_the_sdk_scripted_models_field_for_field(item: TResponseOutputItem) -> None:
    expected = await scripted_stream(item, "offline-response-1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydantic warns when it serialises a field of an unexpected type
        ours = stream_events(item, "offline-response-1")
        assert [type(event) for event in ours] == [type(event) for event in expected]
        assert [event.model_dump_json() for event in ours] == [event.model_dump_json() for event in expected]
        assert [event.model_dump_json(exclude_unset=True) for event in ours] == [
            event.model_dump_json(exclude_unset=True) for event in expected
        ]


class ScriptedStreamModel(OfflineShoppingModel):
    """The offline model streaming through the SDK's ScriptedModel, as it did before it built its own events."""

    async def stream_response(  # the same parameters, passed on as they come
        self, system_instructions: Any, input: Any, model_settings: Any, tools: Any, *args: Any, **kwargs: Any
    ) -> AsyncIterator[Any]:
        scripted = self._scripted_turn(input, tools)
        async for event in scripted.stream_response(system_instructions, input, model_settings, tools, *args, **kwargs):
            yield event


async def run_streamed(model: OfflineShoppingModel, folder: Path) -> tuple[RunResultStreaming, list[Any]]:
    shop = FakeShop(folder)
    request = "add 2 apples and milk, remove 1 apples, then show my list"  # no order: the same results each run
    run = Runner.run_streamed(Agent(name="shop", model=model, tools=shop.tools()), request)
    events = [(event.type, getattr(event, "name", None)) async for event in run.stream_events()]
    return run, events


async def test_a_streamed_run_goes_exactly_as_with_the_sdk_scripted_model(tmp_path: Path) -> None:
    ours, our_events = await run_streamed(OfflineShoppingModel(), tmp_path / "ours")
    sdk, sdk_events = await run_streamed(ScriptedStreamModel(), tmp_path / "sdk")
    assert our_events == sdk_events
    assert [item.to_input_item() for item in ours.new_items] == [item.to_input_item() for item in sdk.new_items]
    assert [response.response_id for response in ours.raw_responses] == [r.response_id for r in sdk.raw_responses]
    assert ours.context_wrapper.usage == sdk.context_wrapper.usage
    assert ours.final_output == sdk.final_output
    assert "Your list: 1 × apples and 1 × milk." in ours.final_output
