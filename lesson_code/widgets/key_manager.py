"""The key manager (lesson 06): create, list, test and revoke keys on a running server.

Why it exists: key life cycle is the part of API-key security people skip. Here a
learner issues a key, proves it works (200), revokes it, and proves it stopped
working (401) at once, without a restart, because the widget changes the same
in-memory `KeyRing` the server checks against.

What it shows, and what it never shows:

* A new key appears masked, with its fingerprint. A real manager shows the full
  key once; in a notebook that "once" would be saved into the file, so instead the
  key goes back to Python: `key = km.create("alice")`, or after the Create button
  `key = km.pop_last_key()`. Either is a `MaskedKey`: every display of it (echo,
  `print`, f-string) shows the mask, so no secret is stored in the notebook; the
  client's copy comes from an explicit `key.reveal()`.
* The table lists name, role, fingerprint, creation time and status; never keys.
* To test a key by name the manager keeps the keys it created in memory (that is
  the only way it can send them); keys it did not create must be passed in.
"""

from __future__ import annotations

import html
from typing import Final

import ipywidgets as w

from lesson_code.keys import KEY_PREFIX, KeyFileError, KeyRecord, KeyRing, generate_key, mask
from lesson_code.masked_key import MaskedKey, revealed
from lesson_code.raw_requests import list_tools
from lesson_code.roles import DEFAULT_ROLE, ROLES
from lesson_code.text import text_table
from lesson_code.widgets.display import DisplaysWidget, badge, html_table, one_line, pre
from lesson_code.widgets.exchange import Exchange, Request, perform, perform_async
from lesson_code.widgets.scheduler import Scheduler

TABLE_COLUMNS: Final = ("name", "role", "fingerprint", "created", "status")


class KeyManager(DisplaysWidget):
    """Create, list, test and revoke keys on a live `KeyRing`; each button has a method twin."""

    def __init__(self, keyring: KeyRing, url: str) -> None:
        self.keyring = keyring
        self.url = url
        self._created: dict[str, str] = {}  # name -> key, only for keys made here; never displayed
        self._revoked: list[KeyRecord] = []
        self._last_key: str | None = None
        self._scheduler = Scheduler(self._show_test_failure)

        self.name_box = w.Text(placeholder="a name, e.g. alice-laptop", description="name")
        self.role_picker = w.Dropdown(options=sorted(ROLES), value=DEFAULT_ROLE, description="role")
        self.create_button = w.Button(description="Create key", button_style="primary", icon="key")
        self.created_view = w.HTML("")
        self.table_view = w.HTML("")
        self.key_picker = w.Dropdown(options=[], description="key")
        self.revoke_button = w.Button(description="Revoke", button_style="danger", icon="ban")
        self.test_button = w.Button(description="Test key", icon="plug")
        self.action_view = w.HTML("")
        self.widget = w.VBox(
            [
                w.HBox([self.name_box, self.role_picker, self.create_button]),
                self.created_view,
                self.table_view,
                w.HBox([self.key_picker, self.test_button, self.revoke_button]),
                self.action_view,
            ]
        )
        self.create_button.on_click(self._on_create_clicked)
        self.revoke_button.on_click(self._on_revoke_clicked)
        self.test_button.on_click(self._on_test_clicked)
        self._refresh()
        count = f"{len(self.keyring)} key{'' if len(self.keyring) == 1 else 's'}"
        print(f"KeyManager ready: {count} on the ring; changes reach the server at {url} at once")

    # -- what a learner does ---------------------------------------------------------------

    def create(self, name: str, role: str = DEFAULT_ROLE) -> MaskedKey:
        """Issue a key named `name` with `role`, live at once; returns the key (its repr is masked)."""
        name = name.strip()
        if any(record.name == name for record in self.keyring.records()):
            raise KeyFileError(f"a key named {name!r} already exists: revoke it first, or pick another name")
        key = generate_key()
        record = self.keyring.add(name, key, role)  # validates the name and the role
        self._created[record.name] = key
        self._last_key = key
        self.created_view.value = (
            f"new key <b>{record.name}</b> ({record.role}): <code>{mask(key)}</code> "
            f"fingerprint <code>{record.fingerprint}</code><br>"
            "<small>Shown masked. The full key went back to Python: call <code>.pop_last_key()</code> "
            "on this manager (or keep what <code>.create()</code> returned); its <code>.reveal()</code> is for the "
            "client's secret store. The server keeps only its digest.</small>"
        )
        self._refresh(select=record.name)
        return MaskedKey(key)

    def revoke(self, name: str) -> KeyRecord:
        """Remove the key named `name` from the ring; the server refuses it from the next request."""
        record = next((r for r in self.keyring.records() if r.name == name), None)
        if record is None or not self.keyring.revoke(name):
            if any(r.name == name for r in self._revoked):
                raise ValueError(f"the key {name!r} is already revoked")
            if record is not None:
                raise ValueError(f"{name!r} comes from the keys file: use `python -m lesson_code keys revoke`")
            raise ValueError(f"no key named {name!r}")
        self._revoked.append(record)
        self._refresh(select=name)
        self.action_view.value = f"revoked <b>{record.name}</b> ({record.fingerprint}): its next request gets 401"
        return record

    def test(self, name_or_key: str | MaskedKey) -> int:
        """Send tools/list with a key (by the name it was created under, or the key itself).

        Returns the HTTP status: 200 for a working key, 401 for a missing, wrong or
        revoked one, 0 if the server did not answer at all.
        """
        label, key = self._resolve(name_or_key)
        return self._show_test(label, perform(_tools_list(self.url, key)))

    async def test_async(self, name_or_key: str | MaskedKey) -> int:
        """Like `test`, without blocking the kernel's event loop: what the Test button uses."""
        label, key = self._resolve(name_or_key)
        return self._show_test(label, await perform_async(_tools_list(self.url, key)))

    def rows(self) -> list[dict[str, str]]:
        """The key table: name, role, fingerprint, created, status (active or revoked). Never keys."""
        active = [(r, "active") for r in self.keyring.records()]
        revoked = [(r, "revoked") for r in self._revoked]
        return [
            {
                "name": r.name,
                "role": r.role,
                "fingerprint": r.fingerprint,
                "created": r.created or "-",
                "status": status,
            }
            for r, status in [*active, *revoked]
        ]

    def pop_last_key(self) -> MaskedKey | None:
        """The key made by the last Create (button or method), handed over once and then forgotten here."""
        key, self._last_key = self._last_key, None
        return None if key is None else MaskedKey(key)

    async def wait_idle(self) -> None:
        """Wait until a test started by the Test button has been answered."""
        await self._scheduler.wait_idle()

    # -- state and display ------------------------------------------------------------------

    def __repr__(self) -> str:
        rows = self.rows()
        lines = [f"KeyManager for {self.url}: {len(self.keyring)} active, {len(self._revoked)} revoked"]
        if rows:
            table = text_table(TABLE_COLUMNS, ([row[c] for c in TABLE_COLUMNS] for row in rows))
            lines += ["  " + line for line in table.splitlines()]
        return "\n".join(lines)

    def _resolve(self, name_or_key: str | MaskedKey) -> tuple[str, str]:
        name_or_key = revealed(name_or_key)
        if name_or_key in self._created:
            return name_or_key, self._created[name_or_key]
        if name_or_key.startswith(KEY_PREFIX):
            record = self.keyring.lookup(name_or_key)
            return (record.name if record else mask(name_or_key)), name_or_key
        if any(r.name == name_or_key for r in [*self.keyring.records(), *self._revoked]):
            raise ValueError(
                f"{name_or_key!r} was not created by this KeyManager, so it does not hold that key: pass the key itself"
            )
        raise ValueError(f"no key named {name_or_key!r}")

    def _show_test(self, label: str, exchange: Exchange) -> int:
        status = exchange.status if exchange.status is not None else 0
        verdict = {200: "the key works", 401: "the key is refused"}.get(status, "unexpected answer")
        detail = html.escape(exchange.error or verdict)
        timing = f"<code>{exchange.latency_ms:.0f} ms</code>"
        who = f"<b>{html.escape(label)}</b>"
        self.action_view.value = f"tools/list with {who}: {badge(exchange.status)} {timing} {detail}"
        return status

    def _refresh(self, select: str | None = None) -> None:
        rows = self.rows()
        self.table_view.value = (
            html_table(TABLE_COLUMNS, ([row[c] for c in TABLE_COLUMNS] for row in rows)) if rows else "<i>No keys.</i>"
        )
        names = list(dict.fromkeys(row["name"] for row in rows))
        current = select or self.key_picker.value
        self.key_picker.options = names
        if names:  # new options leave no selection; keep the learner's, else pick the first
            self.key_picker.value = current if current in names else names[0]

    # -- callbacks -----------------------------------------------------------------------------

    def _on_create_clicked(self, _button: w.Button) -> None:
        try:
            self.create(self.name_box.value, self.role_picker.value)
        except ValueError as error:  # KeyFileError is a ValueError: bad name, duplicate, unknown role
            self.created_view.value = pre(f"not created: {one_line(error)}")
        else:
            self.name_box.value = ""

    def _on_revoke_clicked(self, _button: w.Button) -> None:
        if not self.key_picker.value:
            self.action_view.value = pre("pick a key first")
            return
        try:
            self.revoke(self.key_picker.value)
        except ValueError as error:
            self.action_view.value = pre(f"not revoked: {one_line(error)}")

    def _on_test_clicked(self, _button: w.Button) -> None:
        name = self.key_picker.value
        if not name:
            self.action_view.value = pre("pick a key first")
            return
        self.action_view.value = f"<i>testing {name}…</i>"
        self._scheduler.run_soon(lambda: self.test_async(name))

    def _show_test_failure(self, error: BaseException) -> None:
        self.action_view.value = pre(f"not tested: {one_line(error)}")


def _tools_list(url: str, key: str) -> Request:
    spec = list_tools(api_key=key)
    return Request("POST", url, json=spec["json"], headers=spec["headers"])
