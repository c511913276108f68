"""Template augmentation for formal headlines (issue 14): a training source, never dev or test.

The hand-written formal set (models/data/formal/) is small; these templates multiply its kinds
with both directions of every comparison, so the model learns which direction is good news rather
than which words look formal: losses that narrow or widen, figures against estimates, quantities
that are good news when they fall (claims, inflation, unemployment, costs, debt), insolvency,
fraud, regulator charges, trading halts, recalls, restatements, and results as Earnings. Company
names come from a pool of invented names. Output: text,topic,sentiment CSV.

    python scripts/formal_augment.py --count 3000 --seed 1 --out runs/formal_augment.csv
"""

from __future__ import annotations

import argparse
import csv
import random

FIRST = ["Amber", "Birch", "Cobalt", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris", "Jasper", "Kelvin",
         "Linden", "Maple", "Nimbus", "Onyx", "Pioneer", "Quarry", "Raven", "Summit", "Thistle", "Umber", "Vireo",
         "Willow", "Yarrow", "Zephyr", "Aster", "Basalt", "Cedar", "Dune", "Echo"]
SECOND = ["Holdings", "Industries", "Group", "Systems", "Foods", "Motors", "Bank", "Energy", "Pharma", "Retail",
          "Logistics", "Telecom", "Mining", "Airlines", "Insurance", "Capital", "Chemicals", "Media", "Software", "Steel"]
PERIODS = ["first-quarter", "second-quarter", "third-quarter", "fourth-quarter", "quarterly", "half-year", "annual",
           "full-year", "first-half", "second-half"]
REGIONS = ["US", "UK", "Euro zone", "German", "French", "Japanese", "Canadian", "Australian", "Spanish", "Italian"]
POS, NEG, NEU = "positive", "negative", "neutral"


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
        return f"{co} {per} {metric} {verb} {ref}", "Earnings", POS if good else NEG
    if kind == 2:
        good = rng.random() < 0.5
        size = rng.choice(["smaller", "narrower"]) if good else rng.choice(["bigger", "wider", "larger"])
        exp = rng.choice(["than expected", "than analysts expected", "than forecast"])
        return f"{co} posts {size}-{exp.replace(' ', '-') if False else ''}".rstrip("-") + f" {per} loss {exp}".replace("  ", " "), "Earnings", POS if good else NEG
    if kind == 3:
        good = rng.random() < 0.5
        verb = rng.choice(["raises", "lifts", "increases", "upgrades"] if good else ["cuts", "lowers", "slashes", "trims"])
        what = rng.choice(["annual profit forecast", "full-year guidance", "revenue outlook", "earnings forecast", "sales target"])
        return f"{co} {verb} its {what}", "Earnings", POS if good else NEG
    if kind == 4:
        good = rng.random() < 0.5
        direction = "swings to a profit" if good else "swings to a loss"
        return f"{co} {direction} in the {per.replace('quarterly', 'latest quarter')} period", "Earnings", POS if good else NEG
    if kind == 5:
        good = rng.random() < 0.5
        metric = rng.choice(["profit", "revenue", "sales", "earnings"])
        if good:
            return f"{co} {per} {metric} falls less than feared", "Earnings", POS
        return f"{co} {per} {metric} rises less than expected", "Earnings", NEG
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
    verb = rng.choice(["fall", "drop", "ease", "decline", "slow"] if falls else ["rise", "climb", "jump", "increase", "accelerate"])
    if quantity.startswith(("the ", "unemployment", "inflation", "core", "government", "energy")):
        verb = {"fall": "falls", "drop": "drops", "ease": "eases", "decline": "declines", "slow": "slows", "rise": "rises",
                "climb": "climbs", "jump": "jumps", "increase": "increases", "accelerate": "accelerates"}[verb]
    tail = rng.choice(["more than expected", "", "unexpectedly", "for a third month", "to a " + str(rng.randint(2, 24)) + "-month "
                       + ("low" if falls else "high"), "faster than forecast"])
    text = f"{region} {quantity} {verb} {tail}".strip().replace("  ", " ")
    if rng.random() < 0.15:
        return f"{region} {quantity} {rng.choice(['unchanged', 'steady', 'little changed'])} in {rng.choice(['March', 'June', 'September', 'December'])}", "Macro", NEU
    return text, "Macro", POS if falls else NEG


def company_cost_debt(rng: random.Random) -> tuple[str, str, str]:
    co = company(rng)
    what = rng.choice(["operating costs", "net debt", "borrowing costs", "fuel costs", "debt", "expenses", "input costs"])
    falls = rng.random() < 0.5
    verb = rng.choice(["fall", "drop", "shrink", "decline"] if falls else ["rise", "jump", "swell", "climb"])
    verb += "s"
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
        reg = rng.choice(["The SEC", "Regulators", "Prosecutors", "The Justice Department", "The financial watchdog"])
        if good:
            return f"{reg} {rng.choice(['drop', 'close'])} {rng.choice(['the fraud case', 'the investigation'])} against {co}".replace("Regulators drop", "Regulators drop").replace("The SEC drop", "The SEC drops").replace("The SEC close", "The SEC closes").replace("The Justice Department drop", "The Justice Department drops").replace("The Justice Department close", "The Justice Department closes").replace("The financial watchdog drop", "The financial watchdog drops").replace("The financial watchdog close", "The financial watchdog closes").replace("Prosecutors drop", "Prosecutors drop"), "Legal | Regulation", POS
        charge = rng.choice(["fraud", "misleading investors", "accounting fraud", "insider trading", "bribery", "market manipulation"])
        return f"{reg} {rng.choice(['charge', 'accuse', 'sue'])} {co} {'with' if rng.random() < 0.5 else 'over'} {charge}".replace("The SEC charge", "The SEC charges").replace("The SEC accuse", "The SEC accuses").replace("The SEC sue", "The SEC sues").replace("The Justice Department charge", "The Justice Department charges").replace("The Justice Department accuse", "The Justice Department accuses").replace("The Justice Department sue", "The Justice Department sues").replace("The financial watchdog charge", "The financial watchdog charges").replace("The financial watchdog accuse", "The financial watchdog accuses").replace("The financial watchdog sue", "The financial watchdog sues"), "Legal | Regulation", NEG
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    makers = [earnings] * 4 + [macro] * 3 + [company_cost_debt] + [trouble] * 3
    seen: set[str] = set()
    rows = []
    while len(rows) < args.count:
        text, topic, sentiment = rng.choice(makers)(rng)
        text = " ".join(text.split())
        if text.lower() not in seen:
            seen.add(text.lower())
            rows.append((text, topic, sentiment))
    with open(args.out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "topic", "sentiment"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
