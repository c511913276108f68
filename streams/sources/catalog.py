"""The vocabulary of the synthetic news stream: companies, sources and headline templates.

Written for this project (no rows from any dataset). Companies are fictional so that a planted
"surge of bad news" can never be mistaken for a claim about a real firm; domains use the reserved
`.example` TLD for the same reason. Templates are grouped by the 20 topic labels the model knows and
by sentiment, in two styles: wire-service headlines and short posts with cashtags (those start with
`$`). Placeholders are filled by `streams.sources.generate`; `{company}`/`{ticker}` (and
`{company2}`/`{ticker2}`) name companies and make the record carry `tickers`.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.labels import SENTIMENTS  # noqa: F401  (the generator draws from it here)

TOPICS: tuple[str, ...] = (
    "Analyst Update",
    "Fed | Central Banks",
    "Company | Product News",
    "Treasuries | Corporate Debt",
    "Dividend",
    "Earnings",
    "Energy | Oil",
    "Financials",
    "Currencies",
    "General News | Opinion",
    "Gold | Metals | Materials",
    "IPO",
    "Legal | Regulation",
    "M&A | Investments",
    "Macro",
    "Markets",
    "Politics",
    "Personnel Change",
    "Stock Commentary",
    "Stock Movement",
)


@dataclass(frozen=True, slots=True)
class Company:
    name: str
    ticker: str
    sector: str


COMPANIES: tuple[Company, ...] = (
    Company("Acme Corp", "ACME", "industrials"),
    Company("Northwind Systems", "NWND", "technology"),
    Company("Contoso Software", "CTSO", "technology"),
    Company("Fabrikam Cloud", "FBKM", "technology"),
    Company("Helix Semiconductor", "HLXS", "semiconductors"),
    Company("Quantra Microdevices", "QMDV", "semiconductors"),
    Company("Bluewater Bank", "BWTR", "banking"),
    Company("Granite Financial Group", "GRFG", "banking"),
    Company("Meridian Trust", "MRDT", "banking"),
    Company("Harborview Insurance", "HBVI", "insurance"),
    Company("Petrona Energy", "PTRN", "energy"),
    Company("Sablefield Oil", "SBFO", "energy"),
    Company("Tidewater Gas & Power", "TDGP", "energy"),
    Company("Vireo Pharmaceuticals", "VIRO", "pharmaceuticals"),
    Company("Caldera Biotech", "CLDB", "biotech"),
    Company("Orchard Foods", "ORCD", "consumer goods"),
    Company("Brightleaf Beverages", "BLBV", "consumer goods"),
    Company("Maplestone Retail", "MPSR", "retail"),
    Company("Cartwheel Stores", "CWHL", "retail"),
    Company("Ironbridge Industries", "IRBI", "industrials"),
    Company("Skyward Aerospace", "SKWA", "aerospace"),
    Company("Voltline Motors", "VLTM", "autos"),
    Company("Roadmark Automotive", "RDMK", "autos"),
    Company("Clearwave Telecom", "CLWV", "telecom"),
    Company("Signalpoint Networks", "SGPT", "telecom"),
    Company("Evergreen Utilities", "EVGU", "utilities"),
    Company("Copperline Mining", "CPLM", "mining"),
    Company("Aurum Ridge Resources", "AURR", "mining"),
    Company("Silverkeel Metals", "SVKM", "mining"),
    Company("Lumora Media", "LMRA", "media"),
    Company("Starlit Studios", "STLT", "media"),
    Company("Jetstream Airlines", "JTSA", "airlines"),
    Company("Keystone Realty Trust", "KSRT", "real estate"),
    Company("Pinnacle Health Systems", "PNHS", "healthcare"),
    Company("Cobalt Logistics", "CBLG", "transportation"),
    Company("Nimbus Payments", "NMBP", "fintech"),
    Company("Quillfeather Learning", "QLFL", "education"),
    Company("Redwood Chemicals", "RDWC", "chemicals"),
    Company("Tessellate Robotics", "TSLR", "technology"),
    Company("Greenfield Agritech", "GFAG", "agriculture"),
)

# Companies that are not listed yet: IPO news is about them.
IPO_CANDIDATES: tuple[Company, ...] = (
    Company("Lattice Dynamics", "LTCD", "technology"),
    Company("Bramble Health", "BRMH", "healthcare"),
    Company("Solvane Energy", "SLVN", "energy"),
    Company("Wayfinder Mobility", "WYFM", "autos"),
    Company("Parcelpoint", "PCLP", "transportation"),
    Company("Ember Analytics", "EMBR", "technology"),
)

# Topics whose company-named headlines only make sense for some sectors.
TOPIC_SECTORS: dict[str, frozenset[str]] = {
    "Energy | Oil": frozenset({"energy"}),
    "Financials": frozenset({"banking", "insurance", "fintech"}),
    "Gold | Metals | Materials": frozenset({"mining", "chemicals"}),
}

# How often each topic appears in the background stream (relative weights).
TOPIC_WEIGHTS: dict[str, float] = {
    "Analyst Update": 6,
    "Fed | Central Banks": 4,
    "Company | Product News": 9,
    "Treasuries | Corporate Debt": 3,
    "Dividend": 3,
    "Earnings": 10,
    "Energy | Oil": 4,
    "Financials": 4,
    "Currencies": 3,
    "General News | Opinion": 6,
    "Gold | Metals | Materials": 3,
    "IPO": 2,
    "Legal | Regulation": 4,
    "M&A | Investments": 5,
    "Macro": 6,
    "Markets": 7,
    "Politics": 4,
    "Personnel Change": 3,
    "Stock Commentary": 8,
    "Stock Movement": 9,
}
SENTIMENT_WEIGHTS: tuple[float, float, float] = (0.3, 0.45, 0.25)

NEWS_SOURCES: tuple[tuple[str, str], ...] = (
    ("Finwire", "finwire.example"),
    ("Market Ledger", "marketledger.example"),
    ("The Daily Ticker", "dailyticker.example"),
    ("Street Signal", "streetsignal.example"),
    ("Capital Desk", "capitaldesk.example"),
)
SOCIAL_HANDLES: tuple[str, ...] = ("@TapeReaderHQ", "@MarketPulseNow", "@ChartsAndCoffee", "@BellToBell")
SOCIAL_DOMAIN = "social.example"

T = dict[str, tuple[str, ...]]

TEMPLATES: dict[str, T] = {
    "Analyst Update": {
        "negative": (
            "{firm} downgrades {company} to sell, citing slowing demand in {sector}",
            "${ticker}: {firm} cuts price target to ${target_lo} from ${target_hi}",
            "{company} downgraded to underweight at {firm} on margin worries",
        ),
        "neutral": (
            "{firm} reiterates hold rating on {company}, keeps ${target_hi} target",
            "${ticker} - {firm} initiates coverage at neutral",
            "Analysts split on {company} ahead of {quarter} results",
        ),
        "positive": (
            "{firm} upgrades {company} to buy, sees {pct}% upside",
            "${ticker}: {firm} raises price target to ${target_hi} from ${target_lo}",
            "{company} added to {firm}'s top picks for {year}",
        ),
    },
    "Fed | Central Banks": {
        "negative": (
            "{bank} signals more rate hikes as inflation stays sticky",
            "{official} warns rates will stay higher for longer",
            "Markets wobble as {bank} surprises with {bp} basis point hike",
        ),
        "neutral": (
            "{bank} holds rates steady, in line with expectations",
            "Fed minutes show officials divided on timing of next move",
            "{official} to speak on policy outlook in {city}",
        ),
        "positive": (
            "{bank} cuts rates by {bp} basis points to support growth",
            "Stocks cheer as Fed signals pause in tightening cycle",
            "{official} says inflation fight is largely won, hints at easing",
        ),
    },
    "Company | Product News": {
        "negative": (
            "{company} recalls {units} units over safety defect",
            "${ticker} delays flagship launch to {next_year}",
            "{company} hit by outage affecting millions of customers",
        ),
        "neutral": (
            "{company} to unveil new product lineup at annual event",
            "${ticker} opens new facility in {city}",
            "{company} announces partnership with {company2}",
        ),
        "positive": (
            "{company} wins ${amount} billion contract",
            "${ticker} new product sells out within hours of launch",
            "{company} lands record orders for its new lineup",
        ),
    },
    "Treasuries | Corporate Debt": {
        "negative": (
            "Treasury yields jump as {tenor} note tops {yield_pct}%",
            "{company} credit rating cut to junk by {rater}",
            "Corporate bond spreads widen as default worries mount",
        ),
        "neutral": (
            "{tenor} Treasury yield steady at {yield_pct}% ahead of auction",
            "{company} prices ${amount} billion bond offering",
            "{company} files to sell senior notes due {maturity}",
        ),
        "positive": (
            "Strong demand at {tenor} auction pulls yields lower",
            "{company} upgraded to investment grade by {rater} on lower leverage",
            "Corporate bond issuance rebounds as spreads tighten",
        ),
    },
    "Dividend": {
        "negative": (
            "{company} cuts quarterly dividend by {pct}% to preserve cash",
            "${ticker} suspends dividend amid restructuring",
        ),
        "neutral": (
            "{company} declares quarterly dividend of ${dividend} per share",
            "${ticker} declares ${dividend} dividend, payable next month",
        ),
        "positive": (
            "{company} raises dividend {pct}%, announces ${amount} billion buyback",
            "${ticker} hikes payout for {streak}th straight year",
        ),
    },
    "Earnings": {
        "negative": (
            "{company} shares slide {pct}% after quarterly revenue misses estimates",
            "${ticker} down {pct}% after earnings miss",
            "{company} cuts full-year outlook as {sector} demand weakens",
            "{company} swings to {quarter} loss, withdraws guidance",
        ),
        "neutral": (
            "{company} reports {quarter} results in line with estimates",
            "${ticker} to report {quarter} earnings after the bell",
            "{company} {quarter} EPS ${eps}, in line with consensus",
        ),
        "positive": (
            "{company} beats {quarter} estimates, raises full-year guidance",
            "${ticker} EPS ${eps} beats by ${beat}, revenue up {pct}%",
            "{company} posts record {quarter} revenue on strong {sector} demand",
        ),
    },
    "Energy | Oil": {
        "negative": (
            "Oil slumps {pct_small}% as demand fears mount",
            "{crude} falls below ${oil_price} a barrel on rising inventories",
            "{company} halts output at {region} field after outage",
        ),
        "neutral": (
            "Oil steady near ${oil_price} as traders await OPEC+ meeting",
            "{company} keeps {year} production guidance unchanged",
            "${ticker} to present at energy investor conference",
        ),
        "positive": (
            "Oil jumps {pct_small}% as supply cuts tighten the market",
            "{company} finds major new reserves in {region}",
            "${ticker} up {pct}% as crude rallies",
        ),
    },
    "Financials": {
        "negative": (
            "{company} sets aside ${amount} billion for bad loans",
            "Bank stocks tumble as deposit outflows spook investors",
            "${ticker} falls on weaker trading revenue",
        ),
        "neutral": (
            "{company} passes annual stress test, capital plan unchanged",
            "Regional lenders report mixed deposit trends",
            "${ticker} to hold investor day in {city}",
        ),
        "positive": (
            "{company} net interest income beats forecasts",
            "Bank stocks rally on hopes of lighter capital rules",
            "${ticker} boosts buyback after strong stress test result",
        ),
    },
    "Currencies": {
        "negative": (
            "{currency} slides as traders bet on deeper rate cuts",
            "{pair} drops {pct_small}% after weak data",
        ),
        "neutral": (
            "Dollar steady ahead of jobs report",
            "{pair} little changed as traders await {bank} decision",
        ),
        "positive": (
            "{currency} rallies {pct_small}% on strong growth data",
            "{pair} climbs to three-month high",
        ),
    },
    "General News | Opinion": {
        "negative": (
            "Opinion: Why the {sector} boom is running out of steam",
            "Investors are too complacent about recession risk, strategist warns",
        ),
        "neutral": (
            "What to watch in markets this week",
            "Five things to know before the open",
            "Opinion: The case for and against owning {sector} stocks",
        ),
        "positive": (
            "Opinion: The {sector} rally has room to run",
            "Why this could be the best time in years to buy {sector} stocks",
        ),
    },
    "Gold | Metals | Materials": {
        "negative": (
            "Gold falls {pct_small}% as the dollar strengthens",
            "{metal} prices slump on weak Chinese demand",
            "{company} cuts output forecast after mine flooding",
        ),
        "neutral": (
            "Gold holds near ${gold_price} an ounce ahead of Fed decision",
            "{company} reports {quarter} production in line with guidance",
        ),
        "positive": (
            "Gold hits record high above ${gold_price} as investors seek safety",
            "{metal} jumps {pct_small}% on supply disruptions",
            "${ticker} surges as {metal} prices climb",
        ),
    },
    "IPO": {
        "negative": (
            "{company} prices IPO below range, shares fall {pct}% in debut",
            "{company} postpones IPO, citing market volatility",
        ),
        "neutral": (
            "{company} files for U.S. IPO",
            "{company} sets terms for IPO at ${ipo_low} to ${ipo_high} a share",
        ),
        "positive": (
            "{company} soars {pct}% in market debut",
            "${ticker} prices IPO above range, raising ${amount} billion",
        ),
    },
    "Legal | Regulation": {
        "negative": (
            "{company} faces {agency} probe over accounting practices",
            "${ticker} hit with ${amount} billion antitrust fine",
            "Regulators sue {company} over alleged consumer deception",
        ),
        "neutral": (
            "{agency} proposes new disclosure rules for {sector} companies",
            "{company} to appeal court ruling in patent case",
        ),
        "positive": (
            "{company} wins dismissal of shareholder lawsuit",
            "{company} settles patent dispute, removing an overhang",
            "{agency} closes investigation into {company} without action",
        ),
    },
    "M&A | Investments": {
        "negative": (
            "{company} abandons ${amount} billion bid for {company2}",
            "Regulators block {company}'s acquisition of {company2}",
            "${ticker} falls as investors balk at price paid for {company2}",
        ),
        "neutral": (
            "{company} in talks to acquire {company2}, sources say",
            "{company} takes {pct_small}% stake in {company2}",
        ),
        "positive": (
            "{company} to buy {company2} for ${amount} billion in cash",
            "${ticker2} jumps {pct}% on takeover offer from {company}",
        ),
    },
    "Macro": {
        "negative": (
            "{country} economy unexpectedly contracts in {quarter}",
            "Inflation accelerates to {cpi}%, above forecasts",
            "Jobless claims jump to highest in {months} months",
        ),
        "neutral": (
            "{country} GDP growth in line with expectations",
            "Economists expect steady payroll gains in {month} report",
        ),
        "positive": (
            "Economy adds {jobs}K jobs, beating estimates",
            "Inflation cools to {cpi}%, lowest in two years",
            "{country} factory activity rebounds to expansion",
        ),
    },
    "Markets": {
        "negative": (
            "Stocks tumble as {index} posts worst day in months",
            "{index} falls {pct_small}% as tech selloff deepens",
            "Global markets slide on recession fears",
        ),
        "neutral": (
            "Stocks open flat as investors await {bank} decision",
            "{index} ends little changed in quiet trading",
        ),
        "positive": (
            "{index} closes at record high",
            "Stocks rally as bond yields ease, {index} up {pct_small}%",
        ),
    },
    "Politics": {
        "negative": (
            "Trade tensions escalate as {country} threatens new tariffs",
            "Government shutdown looms as budget talks collapse",
        ),
        "neutral": (
            "Lawmakers debate {sector} spending bill",
            "{country} election results expected later this week",
        ),
        "positive": (
            "Lawmakers strike deal to avert shutdown",
            "{country} agrees to ease trade restrictions",
        ),
    },
    "Personnel Change": {
        "negative": (
            "{company} CEO {person} resigns abruptly amid board dispute",
            "${ticker} CFO departs weeks before earnings",
        ),
        "neutral": (
            "{company} names {person} chief financial officer",
            "{company} appoints {person} to board of directors",
        ),
        "positive": (
            "{company} shares rise after naming industry veteran {person} as CEO",
            "${ticker} up as turnaround expert {person} takes the helm",
        ),
    },
    "Stock Commentary": {
        "negative": (
            "3 reasons to avoid {company} stock right now",
            "${ticker} looks stretched here, momentum fading",
            "Is {company} a value trap?",
        ),
        "neutral": (
            "Is {company} stock a buy after its recent move?",
            "${ticker} - what the options market is pricing ahead of earnings",
        ),
        "positive": (
            "Why {company} stock could double in the next five years",
            "${ticker} breaking out, watching ${price} next",
            "{company} is a top {sector} pick for {year}",
        ),
    },
    "Stock Movement": {
        "negative": (
            "{company} shares drop {pct}% in heavy trading",
            "${ticker} -{pct}% premarket",
            "{company} stock hits 52-week low",
        ),
        "neutral": (
            "{company} shares flat in premarket trading",
            "${ticker} volume spikes, shares unchanged",
        ),
        "positive": (
            "{company} shares jump {pct}% to all-time high",
            "${ticker} +{pct}% on heavy volume",
            "{company} stock extends winning streak to {streak} sessions",
        ),
    },
}

# Optional second paragraph for wire-style items, by sentiment and by whether a company is named.
BODIES: dict[tuple[str, bool], tuple[str, ...]] = {
    ("negative", True): (
        "Shares of {company} ({ticker}) came under pressure as investors reassessed the outlook for {sector}.",
        "The news adds to a difficult stretch for {company}, whose shares have lagged the wider market.",
    ),
    ("neutral", True): (
        "{company} ({ticker}) declined to comment beyond its statement.",
        "{company} is scheduled to update investors at its next quarterly call.",
    ),
    ("positive", True): (
        "Shares of {company} ({ticker}) gained as investors welcomed the news; several analysts lifted estimates.",
        "The move extends a strong run for {company}, which has outperformed its {sector} peers this year.",
    ),
    ("negative", False): (
        "Investors moved into safer assets as the news added to worries about growth.",
        "Traders said the reaction could deepen if the next data releases disappoint.",
    ),
    ("neutral", False): (
        "Markets showed little reaction as traders waited for further details.",
        "Economists said the figures did not change their forecasts for the year.",
    ),
    ("positive", False): (
        "Risk appetite improved after the news, with cyclical sectors leading gains.",
        "Strategists said the development eases one of the main worries for investors.",
    ),
}

FIRMS = ("Harbor & Co", "Lindqvist Securities", "Northgate Capital", "Beaumont Partners", "Oakhurst Research")
BANKS = ("Fed", "ECB", "Bank of England", "Bank of Japan", "Bank of Canada")
OFFICIALS = ("Fed Governor Ellen Marsh", "Fed's Daniel Okafor", "ECB's Marta Villanueva", "BoE's Simon Hale")
PEOPLE = ("Jordan Reyes", "Priya Natarajan", "Elena Novak", "Marcus Bell", "Hana Sato", "Thomas Adeyemi")
CITIES = ("New York", "London", "Frankfurt", "Tokyo", "Singapore", "Chicago", "Toronto")
COUNTRIES = ("Germany", "Japan", "Canada", "Brazil", "China", "India", "France", "Mexico")
CURRENCIES = ("The euro", "The yen", "Sterling", "The Canadian dollar", "The yuan", "The Swiss franc")
PAIRS = ("EUR/USD", "USD/JPY", "GBP/USD", "AUD/USD", "USD/CAD")
INDEXES = ("the S&P 500", "the Nasdaq", "the Dow", "the FTSE 100", "the DAX", "the Nikkei")
METALS = ("Copper", "Silver", "Platinum", "Aluminum", "Nickel", "Lithium")
CRUDES = ("Brent", "WTI")
REGIONS = ("North Sea", "Permian Basin", "Gulf of Mexico", "offshore Brazil", "West Africa")
AGENCIES = ("SEC", "FTC", "Justice Department", "European Commission", "CFPB")
RATERS = ("Moody's", "S&P Global", "Fitch")
TENORS = ("2-year", "5-year", "10-year", "30-year")
MONTHS = ("January", "March", "May", "July", "September", "November")
