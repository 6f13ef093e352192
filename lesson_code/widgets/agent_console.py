"""The agent console (lesson 05): run the shopping agent and watch its tool calls arrive.

Why it exists: the lesson's point is that the key travels with every MCP request
the agent makes, and that a refused key stops the agent with one clear message.
The console streams each tool call and result as it happens, then the answer;
switching "send my API key" off (or "use a wrong key" on) shows the refusal
as the single line the learner can act on, never a traceback.

Output is written with `Output.append_stdout`, not `with out:`: inside a widget
callback the context manager captures into whichever cell is running, which
confuses nbval and stored notebooks.
"""

from __future__ import annotations

import ipywidgets as w

from lesson_code.agent import DEFAULT_QUERY, AgentEvent, AgentRunError, run_shopping_query
from lesson_code.masked_key import MaskedKey, revealed
from lesson_code.redaction import redact
from lesson_code.widgets.display import DisplaysWidget, one_line
from lesson_code.widgets.scheduler import Scheduler


class AgentConsole(DisplaysWidget):
    """A query box, a key switch, a Run button and a live transcript; `await run()` does the same from code."""

    def __init__(self, url: str, key: str | MaskedKey, *, wrong_key: str | MaskedKey | None = None) -> None:
        self.url = url
        self._key = revealed(key)
        self._wrong_key = None if wrong_key is None else revealed(wrong_key)
        self.transcripts: list[str] = []
        self._scheduler = Scheduler(self._report_failure)

        self.query_box = w.Textarea(value=DEFAULT_QUERY, rows=3, layout=w.Layout(width="100%"))
        self.send_key_toggle = w.Checkbox(value=True, description="send my API key", indent=False)
        self.wrong_key_toggle = w.Checkbox(value=False, description="use a wrong key", indent=False)
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.status = w.HTML("")
        self.output = w.Output(layout=w.Layout(border="1px solid #ddd", padding="4px", min_height="3em"))
        switches = [self.send_key_toggle] + ([self.wrong_key_toggle] if wrong_key is not None else [])
        self.widget = w.VBox([self.query_box, w.HBox([*switches, self.run_button, self.status]), self.output])
        self.run_button.on_click(self._on_run_clicked)
        extra = " (a wrong key is available too)" if wrong_key is not None else ""
        print(f"AgentConsole ready for {url}: Run sends your API key{extra}")

    # -- what a learner does ---------------------------------------------------------------

    async def run(self, query: str | None = None, send_key: bool = True, *, use_wrong_key: bool = False) -> str:
        """Run the agent on `query` (default: the text box) and return the transcript.

        `send_key=False` sends no key at all; `use_wrong_key=True` sends the wrong key
        given to the constructor. A refused key or an absent server ends the transcript
        with one line saying so; nothing is raised for those.
        """
        if use_wrong_key and self._wrong_key is None:
            raise ValueError("this console has no wrong key: create it with AgentConsole(url, key, wrong_key=...)")
        query = self.query_box.value if query is None else query
        if not send_key:
            key, which = None, "none (the request carries no x-api-key header)"
        elif use_wrong_key:
            key, which = self._wrong_key, "a wrong key"
        else:
            key, which = self._key, "your API key"

        lines: list[str] = []
        self.output.outputs = ()

        def write(line: str) -> None:
            line = redact(line)
            lines.append(line)
            self.output.append_stdout(line + "\n")

        def on_event(event: AgentEvent) -> None:
            write(event.line())

        write(f"query: {query}")
        write(f"key: {which}")
        self.run_button.disabled = True
        self.status.value = "<i>running…</i>"
        try:
            result = await run_shopping_query(self.url, key, query, on_event=on_event)
        except AgentRunError as error:
            write(f"✗ {one_line(error)}")
            self.status.value = '<span style="color:#b91c1c">refused</span>'
        except Exception as error:  # anything else: still one line, the learner is not debugging the SDK
            write(f"✗ the run failed: {type(error).__name__}: {one_line(error)}")
            self.status.value = '<span style="color:#b91c1c">failed</span>'
        else:
            write(f"model: {result.model_description}")
            self.status.value = '<span style="color:#15803d">done</span>'
        finally:
            self.run_button.disabled = False
        transcript = "\n".join(lines)
        self.transcripts.append(transcript)
        return transcript

    async def wait_idle(self) -> None:
        """Wait until a run started by the Run button has finished."""
        await self._scheduler.wait_idle()

    # -- state and display ------------------------------------------------------------------

    @property
    def last_transcript(self) -> str:
        return self.transcripts[-1] if self.transcripts else ""

    def __repr__(self) -> str:
        switches = f"send my API key: {'on' if self.send_key_toggle.value else 'off'}"
        if self._wrong_key is not None:
            switches += f", use a wrong key: {'on' if self.wrong_key_toggle.value else 'off'}"
        lines = [f"AgentConsole for {self.url}", f"query: {self.query_box.value}", switches]
        if self.transcripts:
            lines.append(f"last run ({len(self.transcripts)} so far):")
            lines += ["  " + line for line in self.last_transcript.splitlines()]
        else:
            lines.append("no runs yet")
        return "\n".join(lines)

    # -- callbacks -----------------------------------------------------------------------------

    def _on_run_clicked(self, _button: w.Button) -> None:
        query, send_key = self.query_box.value, self.send_key_toggle.value
        use_wrong_key = self._wrong_key is not None and self.wrong_key_toggle.value
        self._scheduler.run_soon(lambda: self.run(query, send_key, use_wrong_key=use_wrong_key))

    def _report_failure(self, error: BaseException) -> None:
        self.output.append_stdout(f"✗ {one_line(error)}\n")
        self.run_button.disabled = False
