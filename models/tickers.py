"""Tickers as the project keeps them: `BRK.B`, `VOD.L`, `0700.HK`, `^GSPC`. One set of rules for every
place a ticker is written (a story's tickers at ingest, `finsentry produce`'s report, the roster's
ticker and sector skills), so a skill written `BRK/B` or `LON:VOD` names the scope the monitor counts
the story in (`ticker:BRK.B`, `ticker:VOD.L`). The rules are docs/INPUTS.md's.
"""

from __future__ import annotations

import re

from models.text import clean

# A ticker: an optional ^ (an index, ^GSPC), a root of 1-10 letters or digits (AAPL, 7203, 005930),
# then up to two suffixes of '.' or '-' and 1-4 letters or digits (SAP.DE, 0700.HK, BRK.B, RDS-A).
_TICKER = re.compile(r"^\^?[A-Z0-9]{1,10}(?:[.\-][A-Z0-9]{1,4}){0,2}$")


# How terminals and exchanges write a ticker around the symbol: `LON:VOD`, `VOD LN Equity`. The exchange
# is part of the ticker: it becomes the Yahoo-style suffix tickers are kept with (`VOD.L`, `0700.HK`; none
# for US exchanges), never dropped, since `LON:BA` (BAE Systems) is not `BA` (Boeing). An exchange not
# in these tables (`TSE` is Tokyo to some and Toronto to others) leaves the value as written, which is
# no ticker: dropped and counted, not guessed. In `AAPL:US` the part before the colon is no exchange.
EXCHANGE_SUFFIXES = {
    "NASDAQ": "", "NYSE": "", "NYSEARCA": "", "NYSEAMERICAN": "", "NYSEMKT": "", "AMEX": "", "ARCA": "",
    "BATS": "", "CBOE": "", "OTC": "", "OTCMKTS": "", "LSE": ".L", "LON": ".L", "TSX": ".TO", "TSXV": ".V",
    "CVE": ".V", "ASX": ".AX", "HKEX": ".HK", "HKG": ".HK", "TYO": ".T", "XETRA": ".DE", "ETR": ".DE",
    "FRA": ".F", "EPA": ".PA", "AMS": ".AS", "EBR": ".BR", "ELI": ".LS", "BIT": ".MI", "BME": ".MC",
    "SWX": ".SW", "SIX": ".SW", "VIE": ".VI", "STO": ".ST", "CPH": ".CO", "HEL": ".HE", "OSL": ".OL",
    "NSE": ".NS", "BSE": ".BO", "KRX": ".KS", "SGX": ".SI", "JSE": ".JO", "NZE": ".NZ", "TPE": ".TW",
    "SHA": ".SS", "SHE": ".SZ",
}
# A terminal's (Bloomberg's) exchange codes, the middle word of `VOD LN Equity`.
TERMINAL_SUFFIXES = {
    "US": "", "UN": "", "UW": "", "UQ": "", "UR": "", "UA": "", "UP": "", "UF": "", "UV": "", "LN": ".L",
    "CN": ".TO", "CT": ".TO", "CV": ".V", "AU": ".AX", "AT": ".AX", "HK": ".HK", "JP": ".T", "JT": ".T",
    "GY": ".DE", "GR": ".DE", "GF": ".F", "FP": ".PA", "NA": ".AS", "BB": ".BR", "PL": ".LS", "IM": ".MI",
    "SM": ".MC", "SW": ".SW", "SE": ".SW", "AV": ".VI", "SS": ".ST", "DC": ".CO", "FH": ".HE", "NO": ".OL",
    "IS": ".NS", "IB": ".BO", "KS": ".KS", "SP": ".SI", "SJ": ".JO", "NZ": ".NZ", "TT": ".TW",
}
# A share class after a '/': one letter (`BRK/B`, `RDS/A`). `XOM/GE` could be a class or two tickers,
# so a '/' before more than one letter is no ticker (dropped and counted): a list is written with commas.
_SHARE_CLASS = re.compile(r"/(?=[A-Z]$)")


def _listed(symbol: str, suffix: str) -> str:
    """`symbol` with an exchange's suffix (`VOD` on `.L`), once; Hong Kong's codes as four digits (`0700.HK`)."""
    if suffix == ".HK" and symbol.isdigit():
        symbol = symbol.zfill(4)
    return symbol if symbol.endswith(suffix) else symbol + suffix


def normalise_ticker(text: str) -> str:
    """`$brk/b ` -> `BRK.B`: trimmed, without a leading $, upper-case, an exchange prefix or a
    terminal's suffix read as the exchange's suffix (`LON:VOD` and `VOD LN Equity` -> `VOD.L`,
    `NASDAQ:AAPL` and `AAPL US Equity` -> `AAPL`; an unknown exchange stays, and so is no ticker), a
    one-letter share class's / as '.' (`XOM/GE`, `AAPL/MSFT` stay, and so are no ticker). First
    `clean`: a zero-width space or byte-order mark pasted with a ticker is not part of it, and a
    full-width `ＭＳＦＴ` (East Asian input) is MSFT."""
    ticker = clean(text).lstrip("$").upper()
    exchange, colon, rest = ticker.partition(":")
    if colon and exchange.strip() in EXCHANGE_SUFFIXES and rest.strip():
        ticker = _listed(_SHARE_CLASS.sub(".", rest.strip()), EXCHANGE_SUFFIXES[exchange.strip()])
    words = ticker.split()  # split, not a regex: linear however many spaces a hostile value holds
    if len(words) == 2 and words[-1] == "EQUITY":
        ticker = words[0]
    elif len(words) == 3 and words[-1] == "EQUITY" and words[1] in TERMINAL_SUFFIXES:
        ticker = _listed(_SHARE_CLASS.sub(".", words[0]), TERMINAL_SUFFIXES[words[1]])
    return _SHARE_CLASS.sub(".", ticker)


def is_ticker(text: str) -> bool:
    return bool(_TICKER.match(text))
