"""Template augmentation for formal headlines (issue 14): a training source, never dev or test.

The hand-written formal set (models/data/formal/) is small; these templates multiply its kinds
with both directions of every comparison, so the model learns which direction is good news rather
than which words look formal: losses that narrow or widen and margins that widen or narrow,
figures against estimates, quantities that are good news when they fall (claims, inflation,
unemployment, costs, debt) and those that are good news when they rise (output, sales, wages,
exports), the pace of a change, insolvency, fraud, regulator charges, trading halts, recalls,
restatements, results as Earnings, and every one of the 20 topics with both outcomes and a
neutral variant now and then. A quarter become wire sentences with an attribution. Company names
come from a pool of invented names. No row equal to one of the formal dev or test part is
written. Output: text,topic,sentiment CSV.

    python scripts/formal_augment.py --count 9000 --seed 4 --out runs/formal_augment4.csv

Exits with one line if the templates cannot make --count distinct rows.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
from pathlib import Path

FIRST = ["Amber", "Birch", "Cobalt", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris", "Jasper", "Kelvin",
         "Linden", "Maple", "Nimbus", "Onyx", "Pioneer", "Quarry", "Raven", "Summit", "Thistle", "Umber", "Vireo",
         "Willow", "Yarrow", "Zephyr", "Aster", "Basalt", "Cedar", "Dune", "Echo"]
SECOND = ["Holdings", "Industries", "Group", "Systems", "Foods", "Motors", "Bank", "Energy", "Pharma", "Retail",
          "Logistics", "Telecom", "Mining", "Airlines", "Insurance", "Capital", "Chemicals", "Media", "Software", "Steel"]
PERIODS = ["first-quarter", "second-quarter", "third-quarter", "fourth-quarter", "quarterly", "half-year", "annual",
           "full-year", "first-half", "second-half"]
REGIONS = ["US", "UK", "Euro zone", "German", "French", "Japanese", "Canadian", "Australian", "Spanish", "Italian"]
POS, NEG, NEU = "positive", "negative", "neutral"
FORMAL = Path(__file__).resolve().parents[1] / "models" / "data" / "formal"


PLURAL_SUBJECTS = ("claims", "prices", "layoffs", "insolvencies", "delinquencies", "costs", "expenses", "sales",
                   "earnings", "exports", "orders", "bookings", "deliveries", "starts", "receipts")


def agree(subject: str, verb: str) -> str:
    """The present-tense verb phrase `verb` (written for a singular subject) agreeing with `subject`."""
    if not subject.endswith(PLURAL_SUBJECTS):
        return verb
    first, _, rest = verb.partition(" ")
    if first.endswith(("sses", "shes", "ches", "xes")):
        first = first[:-2]
    elif first.endswith("ies"):
        first = first[:-3] + "y"
    elif first.endswith("s"):
        first = first[:-1]
    return f"{first} {rest}".strip()


def company(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(SECOND)}"


def money(rng: random.Random) -> tuple[int, int]:
    a, b = sorted(rng.sample(range(2, 400), 2))
    return a, b


def earnings(rng: random.Random) -> tuple[str, str, str]:
    co, per = company(rng), rng.choice(PERIODS)
    small, big = money(rng)
    kind = rng.randrange(9)
    if kind == 0:
        good = rng.random() < 0.5
        verb = rng.choice(["narrowed", "shrank", "narrows", "was cut"] if good else ["widened", "grew", "widens", "deepened"])
        a, b = (small, big) if good else (big, small)
        return f"{co} {per} net loss {verb} to ${a} million from ${b} million", "Earnings", POS if good else NEG
    if kind == 1:
        good = rng.random() < 0.5
        metric = rng.choice(["profit", "revenue", "earnings", "sales", "net income", "operating profit", "EBITDA"])
        verb = rng.choice(["beats", "tops", "exceeds", "comes in above", "surpasses"] if good
                          else ["misses", "trails", "falls short of", "comes in below", "lags"])
        ref = rng.choice(["estimates", "analysts' estimates", "consensus", "expectations", "forecasts", "Wall Street forecasts"])
        return f"{co} {per} {metric} {agree(metric, verb)} {ref}", "Earnings", POS if good else NEG
    if kind == 2:
        good = rng.random() < 0.5
        size = rng.choice(["smaller", "narrower"]) if good else rng.choice(["bigger", "wider", "larger"])
        exp = rng.choice(["than expected", "than analysts expected", "than forecast"])
        return f"{co} posts {size} {per} loss {exp}", "Earnings", POS if good else NEG
    if kind == 3:
        good = rng.random() < 0.5
        verb = rng.choice(["raises", "lifts", "increases", "upgrades"] if good else ["cuts", "lowers", "slashes", "trims"])
        what = rng.choice(["annual profit forecast", "full-year guidance", "revenue outlook", "earnings forecast", "sales target"])
        return f"{co} {verb} its {what}", "Earnings", POS if good else NEG
    if kind == 4:
        good = rng.random() < 0.5
        direction = "swings to a profit" if good else "swings to a loss"
        period = "latest quarter" if per == "quarterly" else f"{per} period"
        return f"{co} {direction} in the {period}", "Earnings", POS if good else NEG
    if kind == 5:
        good = rng.random() < 0.5
        metric = rng.choice(["profit", "revenue", "sales", "earnings", "bookings", "orders", "deliveries", "subscriber growth"])
        if good:
            return f"{co} {per} {metric} {agree(metric, 'falls')} less than feared", "Earnings", POS
        return f"{co} {per} {metric} {agree(metric, 'rises')} less than expected", "Earnings", NEG
    if kind == 6:
        pct = rng.randint(3, 60)
        good = rng.random() < 0.5
        metric = rng.choice(["net profit", "revenue", "operating income", "same-store sales", "earnings per share"])
        verb = rng.choice(["rose", "jumped", "climbed", "grew"] if good else ["fell", "dropped", "slumped", "declined"])
        return f"{co}'s {per} {metric} {verb} {pct}%", "Earnings", POS if good else NEG
    if kind == 7:
        good = rng.random() < 0.3
        if good:
            return f"Auditors sign off on {co}'s accounts without qualification", "Earnings", POS
        return f"{co} {rng.choice(['restates', 'is forced to restate', 'will restate'])} {rng.choice(['two', 'three', 'five'])} years of results", "Earnings", NEG
    day = rng.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"])
    return rng.choice([f"{co} will report {per} results on {day}", f"{co} {per} results were in line with estimates",
                       f"{co} to hold {per} earnings call on {day}"]), "Earnings", NEU


def macro(rng: random.Random) -> tuple[str, str, str]:
    region = rng.choice(REGIONS)
    quantity = rng.choice(["jobless claims", "initial jobless claims", "unemployment", "the unemployment rate", "inflation",
                           "consumer prices", "core inflation", "producer prices", "layoffs", "business insolvencies",
                           "mortgage delinquencies", "government debt", "the budget deficit", "energy costs", "food prices"])
    falls = rng.random() < 0.5
    verb = agree(quantity, rng.choice(["falls", "drops", "eases", "declines", "slows"] if falls
                                      else ["rises", "climbs", "jumps", "increases", "accelerates"]))
    tail = rng.choice(["more than expected", "", "unexpectedly", "for a third month", "to a " + str(rng.randint(2, 24)) + "-month "
                       + ("low" if falls else "high"), "faster than forecast"])
    text = f"{region} {quantity.removeprefix('the ')} {verb} {tail}"
    if rng.random() < 0.15:  # the pace, not the direction, is the news: a bad quantity rising slowly is good news
        slow = rng.random() < 0.5
        pace = "cools to its weakest" if slow else "hits its strongest"
        return f"{region} {quantity.removeprefix('the ')}: the increase {pace} in {rng.randint(2, 12)} years", "Macro", POS if slow else NEG
    if rng.random() < 0.15:
        return f"{region} {quantity.removeprefix('the ')} {rng.choice(['unchanged', 'steady', 'little changed'])} in {rng.choice(['March', 'June', 'September', 'December'])}", "Macro", NEU
    return text, "Macro", POS if falls else NEG


def company_cost_debt(rng: random.Random) -> tuple[str, str, str]:
    co = company(rng)
    what = rng.choice(["operating costs", "net debt", "borrowing costs", "fuel costs", "debt", "expenses", "input costs"])
    falls = rng.random() < 0.5
    verb = agree(what, rng.choice(["falls", "drops", "shrinks", "declines"] if falls else ["rises", "jumps", "swells", "climbs"]))
    topic = "Treasuries | Corporate Debt" if "debt" in what or "borrowing" in what else "Company | Product News"
    return f"{co}'s {what} {verb} {rng.randint(5, 40)}%", topic, POS if falls else NEG


def trouble(rng: random.Random) -> tuple[str, str, str]:
    co = company(rng)
    kind = rng.randrange(6)
    good = rng.random() < 0.45
    if kind == 0:
        if good:
            return f"{co} {rng.choice(['emerges from bankruptcy', 'avoids insolvency after a rescue deal', 'exits creditor protection'])}", "Company | Product News", POS
        return f"{co} {rng.choice(['files for Chapter 11 bankruptcy protection', 'files for insolvency', 'enters administration', 'seeks creditor protection', 'collapses into bankruptcy'])}", "Company | Product News", NEG
    if kind == 1:
        # (subject, present-tense verbs for that subject): "Regulators drop" but "The SEC drops"
        reg, drop, charge = rng.choice([("The SEC", "drops", "charges"), ("Regulators", "drop", "charge"),
                                        ("Prosecutors", "drop", "charge"), ("The Justice Department", "drops", "charges"),
                                        ("The financial watchdog", "drops", "charges")])
        if good:
            return f"{reg} {drop} {rng.choice(['the fraud case', 'the investigation'])} against {co}", "Legal | Regulation", POS
        what = rng.choice(["fraud", "misleading investors", "accounting fraud", "insider trading", "bribery", "market manipulation"])
        return f"{reg} {charge} {co} {'with' if rng.random() < 0.5 else 'over'} {what}", "Legal | Regulation", NEG
    if kind == 2:
        if good:
            return f"Trading in {co} shares resumes after the company {rng.choice(['files its accounts', 'clarifies a report', 'completes its review'])}", "Stock Movement", POS
        return f"Trading in {co} shares {rng.choice(['halted', 'suspended'])} {rng.choice(['pending news', 'after it missed a filing deadline', 'after a sharp fall', 'pending an announcement on its debt'])}", "Stock Movement", NEG
    if kind == 3:
        n = f"{rng.randint(10, 900)},000"
        thing = rng.choice(["vehicles", "laptops", "baby car seats", "heaters", "bottles of medicine", "phones"])
        if good:
            return f"{co}'s new {thing} sell out within days of launch", "Company | Product News", POS
        return f"{co} recalls {n} {thing} over {rng.choice(['a fire risk', 'contamination', 'a safety defect', 'faulty wiring'])}", "Company | Product News", NEG
    if kind == 4:
        amount = rng.randint(5, 900)
        if good:
            return f"Court dismisses the ${amount} million lawsuit against {co}", "Legal | Regulation", POS
        return f"Regulator fines {co} ${amount} million over {rng.choice(['money laundering failures', 'misselling', 'a data breach', 'price fixing'])}", "Legal | Regulation", NEG
    if good:
        return f"{co} shares {rng.choice(['jump', 'soar', 'surge', 'rally'])} {rng.randint(5, 40)}% after {rng.choice(['an upbeat forecast', 'a takeover bid', 'strong results'])}", "Stock Movement", POS
    return f"{co} shares {rng.choice(['plunge', 'slump', 'tumble', 'sink'])} {rng.randint(5, 40)}% after {rng.choice(['a profit warning', 'a short-seller report', 'weak results', 'a guidance cut'])}", "Stock Movement", NEG


CENTRAL_BANKS = ["The Federal Reserve", "The European Central Bank", "The Bank of England", "The Bank of Japan",
                 "The Bank of Canada", "The Reserve Bank of Australia", "The Swiss National Bank", "The central bank"]
CURRENCIES = [("The dollar", "US"), ("The euro", "euro zone"), ("Sterling", "British"), ("The yen", "Japanese"),
              ("The Swiss franc", "Swiss"), ("The Australian dollar", "Australian"), ("The Canadian dollar", "Canadian")]
AGENCIES = ["Moody's", "S&P Global", "Fitch", "A ratings agency"]
BROKERS = ["Brokerage", "A Wall Street bank", "A leading brokerage", "Research firm", "A Canadian broker"]
SECTORS = ["housing market", "airline industry", "retail sector", "chip industry", "car industry", "banking sector",
           "property market", "shipping industry", "insurance industry", "steel industry"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def pick(rng: random.Random, good: str, bad: str, neutral: list[str] | None = None, p_neutral: float = 0.15
         ) -> tuple[str, str]:
    """One of the contrast pair's two outcomes, or now and then a neutral variant of the same story."""
    if neutral and rng.random() < p_neutral:
        return rng.choice(neutral), NEU
    return (good, POS) if rng.random() < 0.5 else (bad, NEG)


def central_bank(rng: random.Random) -> tuple[str, str, str]:
    cb = rng.choice(CENTRAL_BANKS)
    kind = rng.randrange(3)
    if kind == 0:
        text, s = pick(rng, f"{cb} signals an end to rate hikes as inflation cools",
                       f"{cb} signals more rate hikes as inflation proves stubborn",
                       [f"{cb} holds its key rate at {rng.randint(1, 5)}.{rng.choice([0, 25, 5, 75])}% as expected",
                        f"Minutes of {cb[0].lower() + cb[1:] if cb.startswith('The ') else cb}'s last meeting will be published on {rng.choice(DAYS)}"])
    elif kind == 1:
        text, s = pick(rng, f"{cb} says the banking system is resilient and well capitalised",
                       f"{cb} warns of rising risks to financial stability from {rng.choice(['property loans', 'private credit', 'household debt'])}")
    else:
        text, s = pick(rng, f"{cb} raises its growth forecast and sees inflation back at target next year",
                       f"{cb} cuts its growth forecast and warns of a recession next year",
                       [f"{cb} keeps its forecasts unchanged"])
    return text, "Fed | Central Banks", s


def currency(rng: random.Random) -> tuple[str, str, str]:
    cur, people = rng.choice(CURRENCIES)
    kind = rng.randrange(3)
    if kind == 0:
        event = rng.choice(["the budget", "the election result", "the trade data", "the central bank's statement"])
        text, s = pick(rng, f"{cur} climbed after {event} reassured investors", f"{cur} tumbled after {event} alarmed investors",
                       [f"{cur} was little changed in quiet trading", f"{cur} traders await {people} inflation data"])
    elif kind == 1:
        n = rng.randint(2, 30)
        text, s = pick(rng, f"{cur} recovers from its record low as confidence in {people} assets returns",
                       f"{cur} hits its weakest level in {n} years as investors flee {people} assets")
    else:
        text, s = pick(rng, f"{cur} firms as {people} growth beats forecasts",
                       f"{cur} slides as {people} growth disappoints")
    return text, "Currencies", s


def analyst(rng: random.Random) -> tuple[str, str, str]:
    co, who = company(rng), rng.choice(BROKERS)
    low, high = sorted(rng.sample(range(20, 300), 2))
    kind = rng.randrange(3)
    if kind == 0:
        text, s = pick(rng, f"{who} raises its price target on {co} to ${high} from ${low}",
                       f"{who} cuts its price target on {co} to ${low} from ${high}",
                       [f"{who} initiates coverage of {co} with a hold rating and a ${low} target"])
    elif kind == 1:
        text, s = pick(rng, f"{who} upgrades {co} to buy, citing improving margins",
                       f"{who} downgrades {co} to sell, citing shrinking margins",
                       [f"{who} reiterates its neutral rating on {co}"])
    else:
        text, s = pick(rng, f"Analysts lift earnings estimates for {co} after the upbeat trading update",
                       f"Analysts slash earnings estimates for {co} after the profit warning")
    return text, "Analyst Update", s


def dividend(rng: random.Random) -> tuple[str, str, str]:
    co, years = company(rng), rng.randint(5, 40)
    cents = rng.randint(5, 90)
    kind = rng.randrange(3)
    if kind == 0:
        text, s = pick(rng, f"{co} raises its dividend for the {years}th year in a row",
                       f"{co} omits its final dividend for the first time in {years} years",
                       [f"{co} declares a regular quarterly dividend of {cents} cents per share", f"{co} shares go ex-dividend on {rng.choice(DAYS)}"])
    elif kind == 1:
        text, s = pick(rng, f"{co} reinstates its dividend as cash flow recovers",
                       f"{co} suspends its dividend to preserve cash")
    else:
        text, s = pick(rng, f"{co} announces a special dividend of {cents} cents after a record year",
                       f"{co} halves its dividend as profits slump")
    return text, "Dividend", s


def ipo(rng: random.Random) -> tuple[str, str, str]:
    co, pct = company(rng), rng.randint(5, 60)
    kind = rng.randrange(3)
    if kind == 0:
        text, s = pick(rng, f"{co} shares jump {pct}% in their stock market debut",
                       f"{co} shares sink {pct}% below their offer price in their stock market debut",
                       [f"{co} files for an initial public offering in {rng.choice(['New York', 'London', 'Frankfurt', 'Hong Kong'])}"])
    elif kind == 1:
        text, s = pick(rng, f"{co} revives its planned initial public offering as markets recover",
                       f"{co} shelves its planned initial public offering amid market turmoil")
    else:
        text, s = pick(rng, f"{co} prices its IPO above the marketed range on strong demand",
                       f"{co} prices its IPO below the marketed range after weak demand",
                       [f"{co} sets terms for its initial public offering"])
    return text, "IPO", s


def merger(rng: random.Random) -> tuple[str, str, str]:
    buyer, target = company(rng), company(rng)
    bn = rng.randint(1, 40)
    kind = rng.randrange(3)
    if kind == 0:
        text, s = pick(rng, f"{buyer} agrees to buy {target} for ${bn} billion, a {rng.randint(15, 60)}% premium",
                       f"{buyer} walks away from its ${bn} billion deal to buy {target}",
                       [f"{buyer} is exploring options for its {rng.choice(['chemicals', 'logistics', 'consumer', 'software'])} unit, including a sale"])
    elif kind == 1:
        text, s = pick(rng, f"Regulators clear {buyer}'s takeover of {target}",
                       f"Regulators block {buyer}'s takeover of {target}")
    else:
        text, s = pick(rng, f"Shareholders approve {buyer}'s ${bn} billion takeover of {target}",
                       f"Shareholders reject {buyer}'s ${bn} billion takeover of {target}")
    return text, "M&A | Investments", s


def personnel(rng: random.Random) -> tuple[str, str, str]:
    co = company(rng)
    role = rng.choice(["chief executive", "finance chief", "chairman", "head of research"])
    text, s = pick(rng, f"{co}'s board extends the contract of its {role}, credited with a turnaround",
                   f"{co}'s {role} resigns abruptly {rng.choice(['after a board dispute', 'amid an accounting probe', 'weeks after a profit warning'])}",
                   [f"{co} names a new {role}", f"{co}'s {role} to retire at the end of the year as planned"])
    return text, "Personnel Change", s


def energy(rng: random.Random) -> tuple[str, str, str]:
    pct = rng.randint(2, 9)
    kind = rng.randrange(3)
    if kind == 0:
        text, s = pick(rng, f"Oil prices jump {pct}% as OPEC+ agrees to cut output",
                       f"Oil prices slump {pct}% as OPEC+ signals it will raise output",
                       [f"Brent crude was steady near ${rng.randint(60, 95)} a barrel in Asian trade"])
    elif kind == 1:
        text, s = pick(rng, "US crude inventories fall more than expected, lifting prices",
                       "US crude inventories rise more than expected, pressuring prices")
    else:
        co = company(rng)
        text, s = pick(rng, f"{co} restarts its refinery ahead of schedule after repairs",
                       f"{co} shuts its largest refinery after a fire, cutting fuel output")
    return text, "Energy | Oil", s


def metals(rng: random.Random) -> tuple[str, str, str]:
    co = company(rng)
    metal = rng.choice(["copper", "gold", "nickel", "lithium", "iron ore", "aluminium"])
    kind = rng.randrange(2)
    if kind == 0:
        text, s = pick(rng, f"{co} raises its {metal} output forecast after a richer-than-expected find",
                       f"{co} cuts its {metal} output forecast after a mine collapse",
                       [f"{metal.capitalize()} was little changed as traders awaited the Fed decision"])
    else:
        text, s = pick(rng, f"{co} resumes work at its largest {metal} mine after ending a strike",
                       f"{co} suspends work at its largest {metal} mine after a strike")
    return text, "Gold | Metals | Materials", s


def markets(rng: random.Random) -> tuple[str, str, str]:
    fear = rng.choice(["recession fears", "inflation worries", "trade war fears", "banking worries"])
    kind = rng.randrange(2)
    if kind == 0:
        text, s = pick(rng, f"Stocks rally worldwide as {fear} fade", f"Stocks tumble worldwide as {fear} grip investors",
                       ["US stock index futures were flat ahead of the jobs report", "European shares open little changed"])
    else:
        index = rng.choice(["The S&P 500", "The Nasdaq", "Europe's STOXX 600", "The Nikkei", "The FTSE 100"])
        text, s = pick(rng, f"{index} closes at a record high as earnings impress",
                       f"{index} falls into a correction as earnings disappoint")
    return text, "Markets", s


def politics(rng: random.Random) -> tuple[str, str, str]:
    kind = rng.randrange(3)
    if kind == 0:
        text, s = pick(rng, "The two countries agree to scrap tariffs, easing fears of a trade war",
                       "The government announces sweeping tariffs, raising fears of a trade war",
                       [f"Parliament will debate the budget bill on {rng.choice(DAYS)}"])
    elif kind == 1:
        text, s = pick(rng, "Lawmakers strike a last-minute deal to avert a government shutdown",
                       "Talks collapse and the government shuts down, furloughing thousands")
    else:
        text, s = pick(rng, "Country's credit outlook raised after the election produces a stable majority",
                       "Country's credit outlook cut after a snap election produces a hung parliament")
    return text, "Politics", s


def financials(rng: random.Random) -> tuple[str, str, str]:
    bank = f"{rng.choice(FIRST)} {rng.choice(['Bank', 'Bancorp', 'Savings', 'Financial'])}"
    bn = rng.randint(1, 9)
    kind = rng.randrange(3)
    if kind == 0:
        text, s = pick(rng, f"{bank} releases ${bn} billion of bad-loan reserves as defaults fall",
                       f"{bank} sets aside ${bn} billion for bad loans as defaults rise")
    elif kind == 1:
        text, s = pick(rng, f"{bank} sees deposits return as confidence recovers",
                       f"{bank} sees deposits flee after a rival lender's collapse")
    else:
        text, s = pick(rng, f"{bank} passes the stress test with a capital buffer to spare",
                       f"{bank} fails the stress test and must raise capital",
                       [f"{bank} will publish its stress test results on {rng.choice(DAYS)}"])
    return text, "Financials", s


def commentary(rng: random.Random) -> tuple[str, str, str]:
    co = company(rng)
    n = rng.choice(["Three", "Four", "Five"])
    text, s = pick(rng, rng.choice([f"Why {co}'s rally may have further to run", f"{n} reasons {co} shareholders have cause to cheer"]),
                   rng.choice([f"Why {co}'s rally may be running out of steam", f"{n} warning signs for {co} shareholders"]),
                   [f"What to watch when {co} reports next week"])
    return text, "Stock Commentary", s


def opinion(rng: random.Random) -> tuple[str, str, str]:
    sector = rng.choice(SECTORS)
    text, s = pick(rng, rng.choice([f"Opinion: the {sector} is set for its best year in a decade",
                                    f"Commentary: the {sector} has never been in better shape"]),
                   rng.choice([f"Opinion: the {sector} faces its toughest year in a decade",
                               f"Commentary: mounting debt is a threat to the {sector}"]),
                   [f"A look at how the {sector} sets its prices"])
    return text, "General News | Opinion", s


def ratings_debt(rng: random.Random) -> tuple[str, str, str]:
    co, agency = company(rng), rng.choice(AGENCIES)
    kind = rng.randrange(2)
    if kind == 0:
        text, s = pick(rng, f"{agency} upgrades {co} to investment grade, citing falling debt",
                       f"{agency} downgrades {co} to junk, citing mounting debt",
                       [f"{agency} affirms {co}'s rating with a stable outlook"])
    else:
        text, s = pick(rng, f"{co}'s bond sale draws record orders, allowing it to cut the interest rate",
                       f"{co} pulls its bond sale after weak investor demand",
                       [f"{co} prices ${rng.randint(2, 9)}00 million of five-year notes"])
    return text, "Treasuries | Corporate Debt", s


def company_news(rng: random.Random) -> tuple[str, str, str]:
    co = company(rng)
    n = rng.randint(2, 20) * 100
    kind = rng.randrange(3)
    if kind == 0:
        text, s = pick(rng, f"{co} to hire {n} workers as demand surges", f"{co} to cut {n} jobs as demand slumps")
    elif kind == 1:
        text, s = pick(rng, f"{co} wins a ${rng.randint(1, 9)} billion contract from the government",
                       f"{co} loses its biggest customer contract to a rival",
                       [f"{co} opens a new office in {rng.choice(['Dublin', 'Austin', 'Singapore', 'Warsaw'])}"])
    else:
        text, s = pick(rng, f"Regulators approve {co}'s new drug", f"Regulators reject {co}'s new drug, citing safety concerns")
    return text, "Company | Product News", s


def macro_good_when_rises(rng: random.Random) -> tuple[str, str, str]:
    """Quantities that are good news when they rise: the mirror of `macro`, so direction is learnt, not 'falls = good'."""
    region = rng.choice(REGIONS)
    quantity = rng.choice(["factory output", "retail sales", "household spending", "wage growth", "exports", "consumer confidence",
                           "business investment", "housing starts", "hiring", "economic growth", "industrial production",
                           "services activity", "factory orders", "tax receipts"])
    rises = rng.random() < 0.5
    verb = agree(quantity, rng.choice(["rises", "climbs", "jumps", "picks up", "beats forecasts", "rebounds"] if rises
                                      else ["falls", "slumps", "drops", "weakens", "misses forecasts", "contracts"]))
    tail = rng.choice(["", "unexpectedly", f"for a {rng.choice(['second', 'third', 'fifth', 'seventh'])} consecutive month",
                       f"at the {'fastest' if rises else 'sharpest'} pace in {rng.randint(2, 12)} years"])
    return f"{region} {quantity} {verb} {tail}".strip(), "Macro", POS if rises else NEG


def macro_survey(rng: random.Random) -> tuple[str, str, str]:
    region = rng.choice(REGIONS)
    sector = rng.choice(["factory activity", "manufacturing", "services activity", "construction activity"])
    n = rng.choice(["second", "third", "sixth", "ninth"])
    text, s = pick(rng, f"{region} {sector} returns to growth after {rng.randint(3, 18)} months of decline",
                   f"{region} {sector} shrinks again, the {n} month of decline",
                   [f"{region} purchasing managers' index due on {rng.choice(DAYS)}"])
    return text, "Macro", s


def margins_and_cuts(rng: random.Random) -> tuple[str, str, str]:
    """A margin that widens is good news, a loss that widens bad; a company cutting its costs or debt is good news."""
    co, pct = company(rng), rng.randint(3, 30)
    if rng.random() < 0.5:
        low, high = sorted(rng.sample(range(8, 60), 2))
        text, s = pick(rng, f"{co}'s {rng.choice(['gross', 'operating'])} margin widens to {high}%, helped by {rng.choice(['cheaper raw materials', 'higher prices', 'lower freight rates'])}",
                       f"{co}'s {rng.choice(['gross', 'operating'])} margin narrows to {low}%, hurt by {rng.choice(['dearer raw materials', 'price cuts', 'higher freight rates'])}")
        return text, "Earnings", s
    what = rng.choice(["its net debt", "operating costs", "its fuel spending", "its borrowing", "overhead costs"])
    text, s = pick(rng, f"{co} {rng.choice(['cuts', 'reduces', 'trims'])} {what} by {pct}%",
                   f"{co}'s {what.removeprefix('its ')} {agree(what, rng.choice(['jumps', 'swells', 'climbs']))} {pct}%")
    return text, "Company | Product News" if "debt" not in what and "borrowing" not in what else "Treasuries | Corporate Debt", s


def rate_outlook(rng: random.Random) -> tuple[str, str, str]:
    cb = rng.choice(CENTRAL_BANKS)
    text, s = pick(rng, rng.choice([f"{cb} opens the door to lower borrowing costs as price pressures ease",
                                    f"{cb} policymakers say the fight against inflation is nearly won"]),
                   rng.choice([f"{cb} says borrowing costs must stay high for an extended period as price pressures linger",
                               f"{cb} policymakers flag the risk of another rate increase"]))
    return text, "Fed | Central Banks", s


def commodity_prices(rng: random.Random) -> tuple[str, str, str]:
    """Energy against metals by the commodity named, the same sentence around it."""
    name, topic = rng.choice([("Brent crude", "Energy | Oil"), ("Oil", "Energy | Oil"), ("Natural gas", "Energy | Oil"),
                              ("US crude", "Energy | Oil"), ("Lithium", "Gold | Metals | Materials"),
                              ("Copper", "Gold | Metals | Materials"), ("Nickel", "Gold | Metals | Materials"),
                              ("Gold", "Gold | Metals | Materials"), ("Iron ore", "Gold | Metals | Materials")])
    months = rng.randint(2, 18)
    text, s = pick(rng, f"{name} prices climb to a {months}-month high as supplies tighten",
                   f"{name} prices sink to a {months}-month low on a supply glut",
                   [f"{name} prices were steady in thin trading"])
    if rng.random() < 0.3:
        co = company(rng)
        what = "production" if topic == "Energy | Oil" else "output"
        text, s = pick(rng, f"{co} lifts its {what} guidance as a new {'field' if topic == 'Energy | Oil' else 'mine'} comes on stream",
                       f"{co} lowers its {what} guidance after an outage at a key {'field' if topic == 'Energy | Oil' else 'mine'}")
    return text, topic, s


def regional_markets(rng: random.Random) -> tuple[str, str, str]:
    where = rng.choice(["European shares", "Asian stocks", "Wall Street", "Emerging market stocks", "Japanese shares", "World stocks"])
    led = rng.choice(["banks", "technology stocks", "miners", "energy shares", "retailers"])
    months = rng.randint(2, 12)
    text, s = pick(rng, f"{where} end at an all-time high, with {led} leading gains", f"{where} end at a {months}-month low, dragged down by {led}",
                   [f"{where} open little changed ahead of the central bank decision"])
    return text, "Markets", s


def funds_and_capital(rng: random.Random) -> tuple[str, str, str]:
    firm = f"{rng.choice(FIRST)} {rng.choice(['Capital', 'Bancorp', 'Insurance', 'Asset Management'])}"
    bn = rng.randint(1, 9)
    kind = rng.randrange(3)
    if kind == 0:
        pct = rng.randint(8, 40)
        text, s = pick(rng, f"{firm}'s main fund returns {pct}% and lets investors back in",
                       f"{firm}'s main fund loses {pct}% and gates redemptions")
    elif kind == 1:
        text, s = pick(rng, f"{firm} reports a capital buffer comfortably above the regulatory minimum",
                       f"{firm} must find ${bn} billion of fresh capital to cover bond losses")
    else:
        text, s = pick(rng, f"{firm} announces a ${bn} billion share buyback and a special dividend",
                       f"{firm} scraps its ${bn} billion share buyback to preserve capital")
    return text, "Financials" if kind < 2 else "Dividend", s

def auctions_and_going_concern(rng: random.Random) -> tuple[str, str, str]:
    co = company(rng)
    kind = rng.randrange(4)
    if kind == 0:
        tenor = rng.choice(["10-year", "30-year", "two-year", "five-year"])
        text, s = pick(rng, f"Solid demand for {tenor} notes at the Treasury's sale calms bond investors",
                       f"Poor demand for {tenor} notes at the Treasury's sale unsettles bond investors",
                       [f"The Treasury will auction ${rng.randint(20, 70)} billion of {tenor} notes on {rng.choice(DAYS)}"])
        return text, "Treasuries | Corporate Debt", s
    if kind == 1:
        text, s = pick(rng, f"{co}'s auditors lift their doubt over its survival after a new cash injection",
                       f"{co}'s auditors question whether it can continue as a going concern")
        return text, "Company | Product News", s
    if kind == 2:
        role = rng.choice(["chief financial officer", "chief executive", "head of trading"])
        text, s = pick(rng, f"{co} hires a respected {role} from a larger rival, cheering investors",
                       f"{co} ousts its {role} after {rng.choice(['a probe into its accounts', 'a misconduct inquiry', 'a trading loss'])}",
                       [f"{co} names a new {role} as part of a planned reshuffle"])
        return text, "Personnel Change", s
    fund = f"{rng.choice(FIRST)} Capital"
    bn = rng.randint(2, 12)
    text, s = pick(rng, f"{fund} closes its new private equity fund above its ${bn} billion goal",
                   f"{fund} closes its new private equity fund well below its ${bn} billion goal")
    return text, "M&A | Investments", s

WIRE_SUFFIXES = [", the company said on {day}", ", according to a statement", ", a filing showed on {day}",
                 ", people familiar with the matter said", ", officials said on {day}"]


def as_wire_sentence(rng: random.Random, text: str) -> str:
    """Now and then, a headline becomes a wire sentence with an attribution, the way Reuters copy reads."""
    if rng.random() < 0.25 and not text.startswith(("Why ", "Opinion", "Commentary", "What to watch", "Three", "Four", "Five", "A look")):
        return text + rng.choice(WIRE_SUFFIXES).format(day=rng.choice(DAYS))
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    # Earnings and Macro carry most of the direction-of-a-quantity kinds; every other topic has a maker too.
    makers = ([earnings] * 6 + [macro] * 3 + [macro_good_when_rises] * 3 + [macro_survey, company_cost_debt]
              + [trouble] * 3 + [margins_and_cuts] * 2
              + [central_bank, rate_outlook, currency, analyst, dividend, ipo, merger, personnel, energy, metals,
                 commodity_prices, markets, regional_markets, politics, financials, funds_and_capital, commentary,
                 opinion, ratings_debt, company_news, auctions_and_going_concern])
    # Never a row of the formal dev or test part: those judge the model and must stay unseen.
    held_out = [FORMAL / f"{part}.csv" for part in ("dev", "test")]
    if missing := [str(p) for p in held_out if not p.is_file()]:
        parser.exit(2, f"formal_augment: {', '.join(missing)} missing: run python scripts/formal_split.py first\n")
    seen: set[str] = {row["text"].lower() for path in held_out
                      for row in csv.DictReader(path.open(newline="", encoding="utf-8"))}
    rows = []
    draws = 0
    while len(rows) < args.count:
        draws += 1
        if draws > 50 * args.count:
            parser.exit(2, f"formal_augment: only {len(rows)} distinct rows after {draws - 1} draws; ask for fewer with --count\n")
        text, topic, sentiment = rng.choice(makers)(rng)
        text = re.sub(r"s's\b", "s'", " ".join(as_wire_sentence(rng, text).split()))  # "Systems' ", not "Systems's "
        if text.lower() not in seen:
            seen.add(text.lower())
            rows.append((text, topic, sentiment))
    with open(args.out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "topic", "sentiment"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
