"""Submit the forms a page rendered, as a browser would: the form's own action and method, its
hidden fields and defaults, and only fields and options that exist on the page.

A test names what a person fills in; a field the page forgot to render, an option it does not
offer or a button it does not show fails the test instead of being posted from a made-up dict.
"""

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import community_factory as make
from werkzeug.datastructures import MultiDict


@dataclass
class Field:
    name: str
    kind: str  # an <input> type, or "select", "textarea"
    value: str = ""
    checked: bool = False
    options: list = field(default_factory=list)  # (value, label, disabled) for a select
    disabled: bool = False


@dataclass
class Form:
    """One <form> of a page: where it goes and what it holds."""

    action: str
    method: str
    attrs: dict
    fields: list = field(default_factory=list)
    buttons: list = field(default_factory=list)  # (name, value, label)

    def names(self):
        return {f.name for f in self.fields}

    def values(self, button=None, **filled):
        """The form data (a MultiDict) a browser sends after a person fills in `filled` and clicks `button`."""
        filled = {name.replace("__", "-"): value for name, value in filled.items()}
        unknown = set(filled) - self.names()
        assert not unknown, f"the form has no field {sorted(unknown)}; it has {sorted(self.names())}"
        data = []
        for f in self.fields:
            if f.disabled:
                assert f.name not in filled, f"field {f.name!r} is disabled"
                continue
            wanted = filled.get(f.name)
            if f.kind in ("checkbox", "radio"):
                chosen = _as_list(wanted) if f.name in filled else ([f.value] if f.checked else [])
                if f.kind == "checkbox" and isinstance(wanted, bool):
                    chosen = [f.value] if wanted else []
                if f.value in chosen:
                    data.append((f.name, f.value))
                continue
            if f.kind == "select":
                offered = {value for value, _, disabled in f.options if not disabled}
                if f.name in filled:
                    for value in _as_list(wanted):
                        assert str(value) in offered, f"{f.name!r} offers {sorted(offered)}, not {value!r}"
                        data.append((f.name, str(value)))
                elif f.options:
                    data.append((f.name, f.value if f.value in offered else next(iter(offered), "")))
                continue
            if f.kind == "hidden":
                assert f.name not in filled, f"{f.name!r} is hidden: a person cannot type into it"
            data.append((f.name, str(wanted) if f.name in filled else f.value))
        for name in filled:  # checkbox and radio values that no box of that name carries
            boxes = [f for f in self.fields if f.name == name and f.kind in ("checkbox", "radio")]
            if boxes and not isinstance(filled[name], bool):
                values = {f.value for f in boxes}
                missing = [v for v in _as_list(filled[name]) if v not in values]
                assert not missing, f"no {name!r} box has the value {missing}; they have {sorted(values)}"
        if button is not None:
            matches = [b for b in self.buttons if button in (b[0], b[2]) or (b[0] and button == f"{b[0]}={b[1]}")]
            assert matches, f"no button {button!r}; the form shows {self.buttons}"
            name, value, _ = matches[0]
            if name:
                data.append((name, value))
        return MultiDict(data)

    def forged(self, values, button=None, extra=None):
        """The data of this form with `values` written over some of its fields, whatever they are:
        what a broken or hostile client sends. Options, hidden fields and checkboxes are not
        checked, and a value of None leaves the field out. Every name in `values` must be a field
        of the form (the rest of the data is what the page rendered); `extra` adds fields that the
        form does not have."""
        values = {name.replace("__", "-"): value for name, value in values.items()}
        unknown = set(values) - self.names()
        assert not unknown, f"the form has no field {sorted(unknown)}; it has {sorted(self.names())}"
        rendered = self.values(button=button)
        data, written = [], set()
        for name, value in (rendered.items(multi=True) if hasattr(rendered, "items") else rendered):
            if name not in values:
                data.append((name, value))
            elif name not in written:
                data.extend((name, v) for v in _as_list(values[name]))
                written.add(name)
        data += [(name, v) for name, value in values.items() if name not in written for v in _as_list(value)]
        data += [(name, v) for name, value in (extra or {}).items() for v in _as_list(value)]
        return MultiDict(data)


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple, set)):
        return [str(v) for v in value]
    return [str(value)]


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms, self.form, self.select, self.option, self.textarea, self.button = [], None, None, None, None, None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self.form = Form(a.get("action", ""), (a.get("method") or "get").lower(), a)
            self.forms.append(self.form)
            return
        if self.form is None:
            return
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "image"):
                self.form.buttons.append((a.get("name", ""), a.get("value", ""), a.get("value", "")))
            elif kind in ("checkbox", "radio"):
                self._add(Field(a.get("name", ""), kind, a.get("value", "on"), "checked" in a,
                                disabled="disabled" in a))
            elif kind not in ("button", "reset", "file"):
                self._add(Field(a.get("name", ""), kind, a.get("value", ""), disabled="disabled" in a))
        elif tag == "select":
            self.select = Field(a.get("name", ""), "select", disabled="disabled" in a)
            self._add(self.select)
        elif tag == "option" and self.select is not None:
            self.option = [a.get("value"), "", "disabled" in a, "selected" in a]
        elif tag == "textarea":
            self.textarea = Field(a.get("name", ""), "textarea", disabled="disabled" in a)
            self._add(self.textarea)
        elif tag == "button" and (a.get("type") or "submit").lower() == "submit":
            self.button = [a.get("name", ""), a.get("value", ""), ""]

    def _add(self, f):
        if f.name:
            self.form.fields.append(f)

    def handle_data(self, data):
        if self.option is not None:
            self.option[1] += data
        elif self.textarea is not None:
            self.textarea.value += data
        if self.button is not None:
            self.button[2] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = None
        elif tag == "option" and self.option is not None:
            value, label, disabled, selected = self.option
            value = label.strip() if value is None else value
            self.select.options.append((value, label.strip(), disabled))
            if selected or (not self.select.value and not disabled and len(self.select.options) == 1):
                self.select.value = value
            self.option = None
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea.value = self.textarea.value.replace("\r\n", "\n").removeprefix("\n")
            self.textarea = None
        elif tag == "button" and self.button is not None:
            name, value, label = self.button
            self.form.buttons.append((name, value, " ".join(label.split())))
            self.button = None


def forms_of(html):
    """Every form on a page."""
    parser = _Parser()
    parser.feed(html)
    return parser.forms


def find_form(html, *, action=None, has=None, button=None, index=None):
    """The one form on a page that matches: its action (a path or a regular expression), a field it
    has, or a button it shows. Fails when none or several match."""
    candidates = []
    for form in forms_of(html):
        if action is not None and not (form.action == action or re.fullmatch(action, form.action)):
            continue
        if has is not None and has not in form.names():
            continue
        if button is not None and not any(button in (b[0], b[2]) for b in form.buttons):
            continue
        candidates.append(form)
    if index is not None:
        return candidates[index]
    assert len(candidates) == 1, (f"{len(candidates)} forms match action={action!r} has={has!r} "
                                  f"button={button!r}: {[f.action for f in forms_of(html)]}")
    return candidates[0]


class Browser:
    """A test client that reads the page it is on and submits that page's forms."""

    def __init__(self, client):
        self.client = client
        self.response = None
        self.url = "/"

    @property
    def html(self):
        return self.response.get_data(as_text=True)

    def get(self, url, **kwargs):
        """Open a page (following redirects) and remember it."""
        self.response = self.client.get(url, follow_redirects=True, **kwargs)
        self.url = self.response.request.path
        if self.response.request.query_string:
            self.url += "?" + self.response.request.query_string.decode()
        return self.response

    def token(self):
        """The CSRF token the current page renders, for a request no form of it makes (a route the
        role's pages do not offer, a forged or replayed post)."""
        tokens = {f.value for form in forms_of(self.html) for f in form.fields if f.name == "csrf_token"}
        assert len(tokens) == 1, f"the page renders {len(tokens)} CSRF tokens"
        return tokens.pop()

    def find(self, action=None, **kwargs):
        """The one form of the current page that matches (see find_form)."""
        return find_form(self.html, action=action, **kwargs)

    def submit(self, *, action=None, has=None, button=None, index=None, follow_redirects=True, **filled):
        """Fill in and submit one form of the current page (chosen by action, a field or a button).

        Field names with a dash are written with a double underscore (qty__3 for qty-3)."""
        form = find_form(self.html, action=action, has=has, button=button, index=index)
        return self.send(form, form.values(button=button, **filled), follow_redirects=follow_redirects)

    def target(self, form):
        """The address a form of the current page posts to."""
        return urljoin(self.url, form.action or self.url)

    def send(self, form, data, follow_redirects=True):
        """Submit `data` (pairs from Form.values) to where `form` goes; the result becomes the page."""
        target = self.target(form)
        data = MultiDict(data)
        if form.method == "post":
            response = self.client.post(target, data=data, follow_redirects=follow_redirects)
        else:  # a GET form replaces the query string of its address, as browsers do
            response = self.client.get(target.split("?")[0], query_string=data, follow_redirects=follow_redirects)
        self.response = response
        if follow_redirects or response.status_code < 300 or response.status_code >= 400:
            self.url = response.request.path
        return response

    def login(self, username, password=make.PASSWORD):
        self.get("/login")
        response = self.submit(has="password", username=username, password=password, follow_redirects=False)
        assert response.status_code == 302, response.get_data(as_text=True)
        self.get(response.location)
        return response

    def logout(self):
        return self.submit(action="/logout")
