"""An agent whose every part carries personal data, for the redaction-at-rest tests: the user's
message, a tool's arguments, a tool's result, a tool's error and the answer are full of it."""

from __future__ import annotations

import re

from shipyard import AgentContext, AgentResult, agent
from shipyard.tools import ToolRegistry

tools = ToolRegistry()

EMAIL = "jane.roe@example.org"
PHONE = "+1 650-253-0000"
CARD = "4111 1111 1111 1111"
IBAN = "DE89 3704 0044 0532 0130 00"
SSN = "078-05-1120"
IP = "203.0.113.7"
ADDRESS = "1600 Amphitheatre Parkway, Mountain View, CA 94043"
SECRET = "sk-proj-3f9aK2mZ8qL1xV7bN4cR6tY0wE5uI9oP"
ALL = (EMAIL, PHONE, CARD, IBAN, SSN, IP, ADDRESS, SECRET)

MESSAGE = f"Hi, I'm Jane ({EMAIL}, SSN {SSN}), my key {SECRET} leaked from {IP}: please update my card"
AGENT_YAML = "  clerk:\n    entry: pii_agent:clerk\n    model: {name: scripted-small}\n"


@tools.tool()
def find_customer(email: str) -> dict[str, object]:
    """The customer with this email address."""
    return {"email": email, "phone": PHONE, "card": CARD, "iban": IBAN, "address": ADDRESS}


@tools.tool()
def notify(email: str) -> dict[str, object]:
    """Send the customer an email."""
    raise ValueError(f"the mailbox of {email} at {IP} is full")


@agent("clerk", tools=tools)
async def clerk(user_input: str, ctx: AgentContext) -> AgentResult:
    found = re.search(r"[\w.+-]+@[\w-]+\.[\w.]*\w", user_input)
    email = found.group(0) if found else ""
    customer = await ctx.tools.call("find_customer", email=email)
    await ctx.tools.call("notify", email=email)
    c = customer.value
    return AgentResult(
        output=f"Found you, {c['email']}: phone {c['phone']}, card {c['card']}, IBAN {c['iban']}, "
        f"address {c['address']}.",
        status="completed",
    )
