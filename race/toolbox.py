"""380 business tools for the race server: 19 domains x 20 operations, like a large real server.

Run inside the server's venv (stock or fork mcp), so it imports only mcp and pydantic. The tools
are generated as Python source, so FastMCP sees ordinary typed async functions with docstrings
and nested pydantic models, and `tools/list` is several hundred kB as on big production servers.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Awaitable, Callable
from typing import Any

SHARED_MODELS = '''
class Address(BaseModel):
    """A postal address."""

    street: str = Field(description="Street and house number")
    city: str
    postal_code: str = Field(pattern=r"^[A-Za-z0-9 -]{3,10}$")
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2 country code")


class Money(BaseModel):
    """An amount in one currency."""

    amount: float = Field(ge=0)
    currency: str = Field(default="EUR", min_length=3, max_length=3, description="ISO 4217 code")


class DateRange(BaseModel):
    """Inclusive range of calendar days; an open end means 'until today'."""

    start: datetime.date
    end: datetime.date | None = None


class Pagination(BaseModel):
    """Which slice of a long result to return."""

    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=50, ge=1, le=500)


class SortSpec(BaseModel):
    """One sort key."""

    field: str
    direction: Literal["asc", "desc"] = "asc"


class Audit(BaseModel):
    """Why a change is made, for the audit log."""

    reason: str | None = Field(default=None, max_length=500)
    requested_by: str | None = None
    notify: list[str] = Field(default_factory=list, description="E-mail addresses to notify")
'''

# plural, record class, fields of the record: (declaration, description)
DOMAINS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("customers", "Customer", [("name: str", "Legal name"), ("email: str", "Primary contact e-mail"),
     ("billing_address: Address", "Where invoices go"), ("credit_limit: Money | None = None", "Approved credit"),
     ("segment: Literal['smb', 'mid', 'enterprise'] = 'smb'", "Sales segment")]),
    ("orders", "Order", [("customer_id: str", "Who ordered"), ("lines: list[str]", "Product SKUs, one per unit"),
     ("total: Money", "Order total incl. tax"), ("shipping_address: Address", "Delivery address"),
     ("priority: Literal['standard', 'express'] = 'standard'", "Fulfilment priority")]),
    ("invoices", "Invoice", [("order_id: str", "Order billed"), ("amount: Money", "Amount due"),
     ("due: datetime.date", "Payment due date"), ("period: DateRange | None = None", "Service period billed")]),
    ("products", "Product", [("sku: str", "Stock keeping unit"), ("title: str", "Display title"),
     ("price: Money", "List price"), ("tags: list[str] = []", "Catalogue tags"), ("active: bool = True", "On sale")]),
    ("stock_items", "StockItem", [("sku: str", "Product SKU"), ("warehouse: str", "Warehouse code"),
     ("quantity: int = 0", "Units on hand"), ("reorder_level: int | None = None", "Reorder below this")]),
    ("shipments", "Shipment", [("order_id: str", "Order shipped"),
     ("carrier: Literal['dhl', 'ups', 'fedex']", "Carrier"), ("destination: Address", "Where it goes"),
     ("weight_kg: float = Field(gt=0)", "Gross weight")]),
    ("tickets", "Ticket", [("subject: str", "One-line summary"), ("body: str", "Full description"),
     ("severity: Literal['low', 'normal', 'high', 'urgent'] = 'normal'", "Impact"),
     ("customer_id: str | None = None", "Reporter")]),
    ("projects", "Project", [("name: str", "Project name"), ("owner: str", "Accountable person"),
     ("budget: Money | None = None", "Approved budget"), ("schedule: DateRange", "Planned duration")]),
    ("tasks", "Task", [("project_id: str", "Parent project"), ("title: str", "What to do"),
     ("assignee: str | None = None", "Who does it"), ("due: datetime.date | None = None", "Deadline"),
     ("estimate_hours: float | None = None", "Effort estimate")]),
    ("events", "CalendarEvent", [("title: str", "Event title"), ("starts_at: datetime.datetime", "Start time"),
     ("ends_at: datetime.datetime", "End time"), ("attendees: list[str] = []", "Invitee e-mails"),
     ("location: Address | None = None", "Venue, if on site")]),
    ("documents", "Document", [("title: str", "Document title"), ("mime_type: str = 'text/plain'", "Content type"),
     ("folder: str = '/'", "Folder path"), ("labels: list[str] = []", "Labels")]),
    ("employees", "Employee", [("full_name: str", "Full name"), ("department: str", "Department code"),
     ("home_address: Address", "Home address"), ("salary: Money", "Gross yearly salary"),
     ("start_date: datetime.date", "First working day")]),
    ("payslips", "Payslip", [("employee_id: str", "Employee paid"), ("period: DateRange", "Pay period"),
     ("gross: Money", "Gross pay"), ("net: Money", "Net pay")]),
    ("campaigns", "Campaign", [("name: str", "Campaign name"),
     ("channel: Literal['email', 'ads', 'social']", "Channel"), ("budget: Money", "Spend cap"),
     ("flight: DateRange", "When it runs")]),
    ("leads", "Lead", [("contact_email: str", "Contact e-mail"), ("company: str | None = None", "Company"),
     ("score: int = Field(default=0, ge=0, le=100)", "Lead score"),
     ("source_campaign_id: str | None = None", "Origin")]),
    ("contracts", "Contract", [("customer_id: str", "Counterparty"), ("value: Money", "Total contract value"),
     ("term: DateRange", "Contract term"), ("auto_renew: bool = False", "Renews automatically")]),
    ("assets", "Asset", [("serial: str", "Serial number"), ("model: str", "Make and model"),
     ("assigned_to: str | None = None", "Employee holding it"), ("purchase_price: Money | None = None", "Cost")]),
    ("vendors", "Vendor", [("name: str", "Vendor name"), ("address: Address", "Registered address"),
     ("payment_terms_days: int = 30", "Days to pay"), ("categories: list[str] = []", "What they supply")]),
    ("reports", "Report", [("title: str", "Report title"), ("query: str", "Saved query"),
     ("schedule_cron: str | None = None", "When it runs"), ("recipients: list[str] = []", "Who gets it")]),
]  # fmt: skip

# name, parameters, docstring; {s} singular snake name, {p} plural, {M} record class, {h} human plural
OPERATIONS: list[tuple[str, str, str]] = [
    ("create_{s}", "item: {M}, audit: Audit | None = None", "Create a {h} record and return its id."),
    ("get_{s}", "{s}_id: str, include_history: bool = False", "Fetch one {h} record by id."),
    ("list_{p}", "filter: {M}Filter | None = None, page: Pagination = Pagination(), sort: list[SortSpec] = []",
     "List {h}, filtered, sorted and paginated."),
    ("update_{s}", "{s}_id: str, changes: {M}Patch, audit: Audit | None = None", "Change fields of a {h} record."),
    ("delete_{s}", "{s}_id: str, hard: bool = False, audit: Audit | None = None",
     "Delete a {h} record; soft delete unless hard is set."),
    ("search_{p}", "query: str, filter: {M}Filter | None = None, page: Pagination = Pagination()",
     "Full-text search over {h}."),
    ("archive_{s}", "{s}_id: str, audit: Audit | None = None", "Archive a {h} record (read-only, hidden)."),
    ("restore_{s}", "{s}_id: str, audit: Audit | None = None", "Restore an archived or soft-deleted {h} record."),
    ("export_{p}", "format: Literal['csv', 'json', 'xlsx'] = 'csv', filter: {M}Filter | None = None",
     "Export {h} to a file and return a download link."),
    ("import_{p}", "items: list[{M}], dry_run: bool = True", "Import {h} in bulk; dry_run only validates."),
    ("count_{p}", "filter: {M}Filter | None = None", "Count {h} matching a filter."),
    ("tag_{s}", "{s}_id: str, tags: list[str]", "Add tags to a {h} record."),
    ("untag_{s}", "{s}_id: str, tags: list[str]", "Remove tags from a {h} record."),
    ("assign_{s}", "{s}_id: str, assignee: str, note: str | None = None", "Make someone responsible for a {h} record."),
    ("comment_{s}", "{s}_id: str, body: str, mentions: list[str] = []", "Add a comment to a {h} record."),
    ("history_{s}", "{s}_id: str, period: DateRange | None = None, page: Pagination = Pagination()",
     "Change history of a {h} record."),
    ("duplicate_{s}", "{s}_id: str, overrides: {M}Patch | None = None", "Copy a {h} record, optionally changed."),
    ("merge_{p}", "keep_id: str, merge_ids: list[str], audit: Audit | None = None",
     "Merge several {h} records into one."),
    ("validate_{s}", "item: {M}", "Check a {h} record against business rules without saving it."),
    ("summarize_{p}", "period: DateRange, group_by: list[str] = []", "Aggregate figures about {h} over a period."),
]  # fmt: skip

HEADER = """
import datetime
from typing import Literal

from pydantic import BaseModel, Field

from mcp.server.fastmcp import Context
"""


def snake(class_name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in class_name).lstrip("_")


def domain_models(record: str, fields: list[tuple[str, str]]) -> str:
    """The record, a filter on it and a patch of it (every field optional)."""
    lines = [f"class {record}(BaseModel):", f'    """A {snake(record).replace("_", " ")} record."""', ""]
    patch = [f"class {record}Patch(BaseModel):", f'    """Fields of a {record} to change; omitted ones stay."""', ""]
    for declaration, description in fields:
        name, rest = declaration.split(": ", 1)
        annotation = rest.split(" = ", 1)[0]
        if "Field(" in rest:
            lines.append(f"    {declaration}")
        else:
            default = f", default={rest.split(' = ', 1)[1]}" if " = " in rest else ""
            lines.append(f"    {name}: {annotation} = Field(description={description!r}{default})")
        optional = annotation if "None" in annotation else f"{annotation} | None"
        patch.append(f"    {name}: {optional} = None")
    filters = [
        f"class {record}Filter(BaseModel):",
        f'    """Which {record} records to include."""',
        "",
        "    ids: list[str] | None = None",
        "    created: DateRange | None = None",
        "    text: str | None = Field(default=None, description='Substring of any text field')",
        "    include_archived: bool = False",
    ]
    return "\n".join(lines + [""] + patch + [""] + filters) + "\n"


def tool_source(name: str, params: str, doc: str) -> str:
    return (
        f"async def {name}(ctx: Context, {params}, trace_id: str | None = None) -> dict[str, str]:\n"
        f'    """{doc}\n\n    trace_id: the caller\'s trace id, echoed in the audit log.\n    """\n'
        f"    return await record(ctx, {name!r}, trace_id)\n"
    )


def generate() -> tuple[str, list[str]]:
    """Python source defining the models and the tools, and the tool names in order."""
    parts = [HEADER, SHARED_MODELS]
    names: list[str] = []
    for plural, record, fields in DOMAINS:
        parts.append(domain_models(record, fields))
        words = {"s": snake(record), "p": plural, "M": record, "h": plural.replace("_", " ")}
        for name, params, doc in OPERATIONS:
            names.append(name.format(**words))
            parts.append(tool_source(names[-1], params.format(**words), doc.format(**words)))
    return "\n\n".join(parts), names


Recorder = Callable[[Any, str, "str | None"], Awaitable[dict[str, str]]]


# How the generated tools import their Context: from mcp 1.x's bundled FastMCP.
BUNDLED_CONTEXT = "from mcp.server.fastmcp import Context"


# A tool whose answer takes a while, for calls in flight when a server is told to stop (the race servers'
# --slow-tool); not one of the 380.
SLOW_TOOL = "slow"
SLOW_SOURCE = f'''
async def {SLOW_TOOL}(ctx: Context, seconds: float = 2.0, trace_id: str | None = None) -> dict[str, str]:
    """Wait `seconds`, then answer as every other tool does.

    trace_id: the caller's trace id, echoed in the audit log.
    """
    await anyio.sleep(seconds)
    return await record(ctx, {SLOW_TOOL!r}, trace_id)
'''


def define_tools(record: Recorder, context_import: str | None = None, *, slow: bool = False) -> list[Any]:
    """The tools, in order, as functions of a real module; every one awaits `record(ctx, tool, trace_id)`.

    `context_import` replaces the tools' BUNDLED_CONTEXT import (MCPServer's or fastmcp's Context); the tools
    are then compiled without this file's `from __future__ import annotations`, which would turn their
    annotations into strings that a framework may resolve in its own namespace rather than the tools' module.
    `slow` adds the tool SLOW_TOOL last.
    """
    source, names = generate()
    if slow:
        source = f"{source}\n\nimport anyio\n\n{SLOW_SOURCE}"
        names.append(SLOW_TOOL)
    if context_import is not None:
        if source.count(BUNDLED_CONTEXT) != 1:
            raise SystemExit(f"toolbox no longer imports its Context as {BUNDLED_CONTEXT!r}")
        source = source.replace(BUNDLED_CONTEXT, context_import)
    # A real module, so pydantic can resolve the models' names through sys.modules.
    module = types.ModuleType("race_tools")
    module.record = record  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    exec(compile(source, "<race tools>", "exec", dont_inherit=context_import is not None), module.__dict__)
    return [getattr(module, name) for name in names]


def add_tools(server: Any, record: Recorder, *, slow: bool = False) -> int:
    """Define the tools on a FastMCP server (with `slow`, SLOW_TOOL too); every one awaits
    `record(ctx, tool, trace_id)`."""
    tools = define_tools(record, slow=slow)
    for tool in tools:
        server.add_tool(tool)
    return len(tools)
