"""The jinja2 environment playbook templates run in: immutable, with no loader, and under budgets.

jinja2's sandbox keeps templates away from Python internals, but not away from the machine: a loop of loops,
`2**64**64`, `"x" * 10**9`, a list of one large string repeated and joined, a recursive macro, or
`"%09999999999d" % 1` would hang or exhaust memory. Here every loop counts its iterations, every call its
depth, every operation that can build a large value checks its size before building it, and everything
built counts against a total, so a hostile template ends in a located error instead.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import StrictUndefined, Template, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.filters import FILTERS
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
from jinja2.utils import Cycler, Joiner, Namespace

MAX_VALUE = 1024 * 1024  # characters in one value a template builds (a Provena field is far smaller)
MAX_PRODUCED = 64 * 1024 * 1024  # characters (and list items) all of a playbook's templates build
MAX_ITERATIONS = 1_000_000  # loop iterations and calls, all templates of a playbook together
MAX_CALL_DEPTH = 32  # nested calls (recursive macros)
MAX_INT_BITS = 4096  # integers a template computes (2**4096 is already absurd for a playbook)
MAX_SECONDS = 30.0  # wall-clock time for all of a playbook's templates: the last resort against hangs

# Methods a template may call on text, lists and mappings: pure, and linear in what they are given.
_STR_METHODS = """
    lower upper title capitalize casefold swapcase strip lstrip rstrip startswith endswith split rsplit
    splitlines partition rpartition count find rfind index rindex removeprefix removesuffix isdigit isalpha
    isalnum isspace islower isupper isnumeric isdecimal isidentifier istitle replace join ljust rjust zfill
    center
"""
_METHODS: dict[type, frozenset[str]] = {
    str: frozenset(_STR_METHODS.split()),
    list: frozenset(["index", "count"]),
    tuple: frozenset(["index", "count"]),
    dict: frozenset(["items", "keys", "values", "get"]),
}
_WIDTH_METHODS = frozenset(["ljust", "rjust", "zfill", "center"])
# Filters whose output is bounded by their input (or checked below); the rest (format, indent, center,
# wordwrap, pprint, urlize, xmlattr, random) are left out: formatting widths and randomness have no
# place in a reviewed playbook.
_FILTER_NAMES = """
    abs attr batch capitalize count d default dictsort e escape first float forceescape groupby int items
    join last length list lower map max min reject rejectattr replace reverse round safe select selectattr
    slice sort string striptags sum title tojson trim truncate unique upper urlencode wordcount
"""
_FILTERS = _FILTER_NAMES.split()


class BudgetExceeded(SecurityError):
    """A template went over one of its budgets; the message says which."""


def size(value: Any, limit: int = MAX_VALUE) -> int:
    """Characters `str(value)` would hold (containers: their items plus separators), counted without
    building it, and only up to just past `limit`."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        current = stack.pop()
        if isinstance(current, str | bytes):
            total += len(current) + 2
        elif isinstance(current, dict):
            total += 2 + 2 * len(current)
            stack.extend(current.keys())
            stack.extend(current.values())
        elif isinstance(current, list | tuple | set | frozenset):
            total += 2 + 2 * len(current)
            stack.extend(current)
        elif isinstance(current, int) and not isinstance(current, bool):
            total += current.bit_length() // 3 + 1
        else:
            total += 24
    return total


class Budget:
    """What all the templates of one playbook may spend together."""

    def __init__(self) -> None:
        self.iterations = 0
        self.produced = 0
        self.depth = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def tick(self, count: int = 1) -> None:
        self.iterations += count
        if self.iterations > MAX_ITERATIONS:
            raise BudgetExceeded(
                f"the templates run more than {MAX_ITERATIONS:,} loop iterations and calls in all"
            )
        if time.monotonic() > self.deadline:
            raise BudgetExceeded(f"the templates take more than {MAX_SECONDS:.0f} seconds in all")

    def check(self, estimate: int, what: str = "a value") -> None:
        """Before building something of about `estimate` characters."""
        if estimate > MAX_VALUE:
            raise BudgetExceeded(
                f"{what} of more than {MAX_VALUE // 1024 // 1024} MB ({MAX_VALUE:,} characters)"
            )
        self.produced += estimate
        if self.produced > MAX_PRODUCED:
            raise BudgetExceeded(
                f"the templates build more than {MAX_PRODUCED // 1024 // 1024} MB of values in all"
            )

    def built(self, value: Any, what: str = "a value") -> Any:
        if isinstance(value, str | list | tuple | dict | set | frozenset | int) and not isinstance(
            value, bool
        ):
            self.check(size(value), what)
        return value


class PlaybookEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(["*", "**", "+", "%", "//", "/"])
    intercepted_unops = frozenset(["-"])

    def __init__(self, budget: Budget) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, finalize=self._finalize)
        self.budget = budget
        self.globals = {
            "range": self._range, "dict": dict, "namespace": Namespace, "cycler": Cycler, "joiner": Joiner,
        }  # fmt: skip
        self.filters = {name: self._budgeted(FILTERS[name]) for name in _FILTERS}
        self.filters["string"] = self._string
        self.filters["join"] = self._budgeted(FILTERS["join"], before=self._joined_size)
        self.filters["replace"] = self._budgeted(FILTERS["replace"], before=self._replaced_size)
        self.filters["tojson"] = self._budgeted(FILTERS["tojson"], before=lambda value, *_: size(value))
        self.filters[_COUNT] = self._counted
        self.filters[_CONCAT] = self._concat

    # -- compilation: every loop counted, every `~` checked --------------------------------------------

    def compile_expression(self, source: str, undefined_to_none: bool = True) -> TemplateExpression:
        """As jinja2's, with the expression's tree budgeted before it is compiled."""
        parser = Parser(self, source, state="variable")
        expression = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno, None, None)
        body = [nodes.Assign(nodes.Name("result", "store"), expression, lineno=1)]
        template = self.from_string(self.budgeted_tree(nodes.Template(body, lineno=1)))
        return TemplateExpression(template, undefined_to_none)

    def budgeted_template(self, source: str) -> Template:
        return self.from_string(self.budgeted_tree(self.parse(source)))

    def budgeted_tree(self, tree: nodes.Template) -> nodes.Template:
        """Route loops through the iteration count and `~` through the size check."""
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _COUNT, [], [], None, None, lineno=loop.lineno)
        for parent in [tree, *tree.find_all(nodes.Node)]:
            for name, child in list(parent.iter_fields()):
                if isinstance(child, nodes.Concat):
                    setattr(parent, name, self._concat_node(child))
                elif isinstance(child, list):
                    for index, item in enumerate(child):
                        if isinstance(item, nodes.Concat):
                            child[index] = self._concat_node(item)
        tree.set_environment(self)
        return tree

    def _concat_node(self, concat: nodes.Concat) -> nodes.Filter:
        items = nodes.List(list(concat.nodes), lineno=concat.lineno)
        return nodes.Filter(items, _CONCAT, [], [], None, None, lineno=concat.lineno)

    # -- the hooks -------------------------------------------------------------------------------------

    def _finalize(self, value: Any) -> Any:
        """Each `{{ ... }}` of a larger template, before it is turned into text."""
        self.budget.tick()
        self.budget.check(size(value), "an output")
        return value

    def _counted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.budget.tick()
            yield item

    def _concat(self, items: list[Any]) -> str:
        self.budget.check(sum(size(item) for item in items), "a joined text (~)")
        return "".join(str(item) for item in items)

    def _string(self, value: Any) -> str:
        self.budget.check(size(value), "a text")
        return str(value)

    def _range(self, *args: int) -> range:
        self.budget.tick()
        return safe_range(*args)

    @staticmethod
    def _joined_size(value: Any, separator: str = "", *_: Any, **__: Any) -> int:
        items = list(value) if isinstance(value, list | tuple | dict | set | frozenset | str) else []
        return size(items) + len(str(separator)) * len(items)

    @staticmethod
    def _replaced_size(text: Any, old: Any = "", new: Any = "", count: Any = None, **_: Any) -> int:
        text, old, new = str(text), str(old), str(new)
        occurrences = (len(text) + 1) if not old else text.count(old)
        if isinstance(count, int) and count >= 0:
            occurrences = min(occurrences, count)
        return len(text) + occurrences * len(new)

    def _budgeted(self, function: Callable[..., Any], before: Callable[..., int] | None = None) -> Any:
        """A filter that spends from the budget: checked before (when it can build large) and after."""
        passes = getattr(function, "jinja_pass_arg", None)

        @functools.wraps(function)
        def budgeted(*args: Any, **kwargs: Any) -> Any:
            self.budget.tick()
            if before is not None:
                subject = args[1:] if passes is not None else args
                self.budget.check(before(*subject, **kwargs), "a filter's result")
            return self.budget.built(function(*args, **kwargs), "a filter's result")

        return budgeted

    def wrap_str_format(self, value: Any) -> None:
        """`str.format` is not among the methods a template may call (its widths build any size)."""
        return None

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        allowed = next((names for kind, names in _METHODS.items() if isinstance(obj, kind)), None)
        if allowed is not None and callable(value) and attr not in allowed:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = __self.budget
        budget.tick()
        name = getattr(__obj, "__name__", "")
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            if name in _WIDTH_METHODS and args and isinstance(args[0], int):
                budget.check(args[0], "a padded text")
            elif name == "replace" and len(args) >= 2:
                budget.check(__self._replaced_size(owner, *args[:3]), "a replaced text")
            elif name == "join" and args:
                budget.check(__self._joined_size(args[0], owner), "a joined text")
        budget.depth += 1
        try:
            if budget.depth > MAX_CALL_DEPTH:
                raise BudgetExceeded(f"calls nest more than {MAX_CALL_DEPTH} deep (a recursive macro?)")
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1
        return budget.built(result, "a call's result")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = self.budget
        budget.tick()
        numbers = all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right))
        if operator == "**" and numbers and right > 0:
            if max(left.bit_length(), 1) * right > MAX_INT_BITS and abs(left) > 1:
                raise BudgetExceeded(f"{left} ** {right} is too large a number")
        elif operator == "*" and numbers:
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise BudgetExceeded("the product is too large a number")
        elif operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if isinstance(sequence, str | list | tuple) and isinstance(count, int):
                    budget.check(size(sequence) * max(count, 0), "a repeated value")
        elif operator == "+" and not numbers:
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                budget.check(size(left) + size(right), "a sum of values")
        elif operator == "%" and isinstance(left, str):
            raise SecurityError("'%' formatting of text is not available; join text with ~")
        return budget.built(super().call_binop(context, operator, left, right), "a computed value")

    def call_unop(self, context: Any, operator: str, arg: Any) -> Any:
        self.budget.tick()
        return super().call_unop(context, operator, arg)


_COUNT = "_po_counted"
_CONCAT = "_po_concat"
