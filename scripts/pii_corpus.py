#!/usr/bin/env python3
"""Writes testdata/pii_corpus/bank_answers.jsonl: labelled bank-chat answers for PII detectors.

Each line is {"id", "text", "entities": [{"type", "start", "end"}], "kind"}, with character
offsets (Python str indices, end exclusive) that cover exactly the value. The rows are made
from hand-written answer templates filled with values generated here and checked here:
Luhn-valid cards, SSNs and ITINs by the SSA/IRS rules, mod-97-valid IBANs, checksum-valid
ABA routing numbers, North American and European phones, emails, IPv4/IPv6 addresses and AWS
secret access keys; their Unicode variants; and look-alikes that carry no entity at all.
testdata/pii_corpus/README.md gives the row format and the label rules.

Standard library only and deterministic (one random.Random(20261130)), so running it again
writes the same bytes:

    python3 scripts/pii_corpus.py            # (re)writes the corpus, prints counts
    python3 scripts/pii_corpus.py --check    # exits 1 when the file differs from a fresh run
"""

import collections
import ipaddress
import json
import os
import random
import re
import sys
import unicodedata

SEED = 20261130
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "testdata", "pii_corpus", "bank_answers.jsonl")

CARD, SSN, ITIN, EMAIL, PHONE = "CREDIT_CARD", "US_SSN", "US_ITIN", "EMAIL_ADDRESS", "PHONE_NUMBER"
IBAN, ABA, IP, AWS = "IBAN_CODE", "ABA_ROUTING_NUMBER", "IP_ADDRESS", "AWS_SECRET_KEY"

rng = random.Random(SEED)

# ---------------------------------------------------------------------------------------
# Checksums and rules (used to make values and, independently, to check every label)


def luhn_ok(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_digit(partial):
    """The check digit that makes partial + digit Luhn-valid."""
    for d in "0123456789":
        if luhn_ok(partial + d):
            return d
    raise AssertionError("unreachable")


def card_brand(digits):
    n = len(digits)
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if n == 16 and (51 <= int(digits[:2]) <= 55 or 2221 <= int(digits[:4]) <= 2720):
        return "mastercard"
    if n == 15 and digits[:2] in ("34", "37"):
        return "amex"
    if n == 16 and (digits[:4] == "6011" or digits[:2] == "65" or 644 <= int(digits[:3]) <= 649):
        return "discover"
    return None


# Numbers the SSA voided or that are printed as samples everywhere: never used as values.
SAMPLE_SSNS = {"078051120", "219099999", "123456789", "457555462"}


def ssn_ok(d9):
    area, group, serial = int(d9[:3]), int(d9[3:5]), int(d9[5:])
    return (
        len(d9) == 9
        and area not in (0, 666)
        and area < 900
        and group != 0
        and serial != 0
        and d9 not in SAMPLE_SSNS
    )


def itin_group_ok(group):
    return 50 <= group <= 65 or 70 <= group <= 88 or 90 <= group <= 92 or 94 <= group <= 99


def itin_ok(d9):
    return len(d9) == 9 and d9[0] == "9" and itin_group_ok(int(d9[3:5]))


def aba_prefix_ok(d9):
    p = int(d9[:2])
    return 0 <= p <= 12 or 21 <= p <= 32 or 61 <= p <= 72 or p == 80


def aba_ok(d9):
    d = [int(c) for c in d9]
    s = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])
    return len(d9) == 9 and aba_prefix_ok(d9) and s % 10 == 0


def iban_number(s):
    """The IBAN as the integer mod-97 is taken of (letters A=10 .. Z=35)."""
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved))


def iban_ok(s):
    return re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", s) is not None and iban_number(s) % 97 == 1


IBAN_LENGTHS = {"GB": 22, "DE": 22, "FR": 27, "ES": 24, "NL": 18}


def unicode_digits(s):
    """The decimal digits of s (any script), as ASCII."""
    return "".join(str(unicodedata.digit(c)) for c in s if unicodedata.category(c) == "Nd")


# ---------------------------------------------------------------------------------------
# Values


def digits(n):
    return "".join(rng.choice("0123456789") for _ in range(n))


def card_number(brand):
    if brand == "visa":
        prefix, length = "4", 16
    elif brand == "mastercard":
        prefix = rng.choice(["51", "52", "53", "54", "55", str(rng.randint(2221, 2720))])
        length = 16
    elif brand == "amex":
        prefix, length = rng.choice(["34", "37"]), 15
    elif brand == "discover":
        prefix, length = rng.choice(["6011", "65", str(rng.randint(644, 649))]), 16
    else:
        raise ValueError(brand)
    body = prefix + digits(length - 1 - len(prefix))
    return body + luhn_digit(body)


def group_card(number, sep):
    """4-4-4-4 (4-6-5 for a 15-digit Amex) joined by sep."""
    if len(number) == 15:
        parts = [number[:4], number[4:10], number[10:]]
    else:
        parts = [number[i : i + 4] for i in range(0, len(number), 4)]
    return sep.join(parts)


def card_invalid(brand):
    """A brand-shaped number whose last digit breaks Luhn."""
    good = card_number(brand)
    bad_last = str((int(good[-1]) + rng.randint(1, 9)) % 10)
    bad = good[:-1] + bad_last
    assert not luhn_ok(bad)
    return bad


def ssn_digits():
    while True:
        area = rng.randint(1, 899)
        if area == 666:
            continue
        d9 = "%03d%02d%04d" % (area, rng.randint(1, 99), rng.randint(1, 9999))
        if ssn_ok(d9):
            return d9


def fmt_ssn(d9, sep="-"):
    return d9[:3] + sep + d9[3:5] + sep + d9[5:]


def itin_digits():
    while True:
        group = rng.randint(50, 99)
        if itin_group_ok(group):
            return "9%02d%02d%04d" % (rng.randint(0, 99), group, rng.randint(1, 9999))


def bad_ssn_digits():
    """SSN-shaped but invalid: area 000, 666 or 9xx (9xx with a group no ITIN uses)."""
    area = rng.choice(["000", "666", "9xx"])
    if area == "9xx":
        group = rng.choice([g for g in range(1, 100) if not itin_group_ok(g)])
        d9 = "9%02d%02d%04d" % (rng.randint(0, 99), group, rng.randint(1, 9999))
    else:
        d9 = "%s%02d%04d" % (area, rng.randint(1, 99), rng.randint(1, 9999))
    assert not ssn_ok(d9) and not itin_ok(d9)
    return d9


ABA_PREFIXES = ["%02d" % p for p in list(range(1, 13)) + list(range(21, 33))] * 3 + [
    "%02d" % p for p in list(range(61, 73)) + [80]
]


def aba_number():
    while True:
        d8 = rng.choice(ABA_PREFIXES) + digits(6)
        for last in "0123456789":
            if aba_ok(d8 + last):
                return d8 + last


def iban_check_digits(country, bban):
    rem = iban_number(country + "00" + bban) % 97
    return "%02d" % (98 - rem)


def fr_rib_key(bank, branch, account):
    return "%02d" % (97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97)


def es_dc(ten):
    weights = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]
    d = 11 - sum(int(c) * w for c, w in zip(ten, weights)) % 11
    return {11: 0, 10: 1}.get(d, d)


def nl_account():
    """Ten digits that pass the Dutch eleven-test."""
    while True:
        nine = digits(9)
        last = -sum(int(c) * w for c, w in zip(nine, range(10, 1, -1))) % 11
        if last < 10:
            return nine + str(last)


def iban_value(country):
    if country == "GB":
        bban = rng.choice(["NWBK", "BARC", "LOYD", "HBUK", "MIDL", "NAIA"]) + digits(6) + digits(8)
    elif country == "DE":
        bban = str(rng.randint(1, 8)) + digits(7) + digits(10)
    elif country == "FR":
        bank, branch, account = digits(5), digits(5), digits(11)
        bban = bank + branch + account + fr_rib_key(bank, branch, account)
    elif country == "ES":
        bank, branch, account = digits(4), digits(4), digits(10)
        bban = bank + branch + "%d%d" % (es_dc("00" + bank + branch), es_dc(account)) + account
    elif country == "NL":
        bban = rng.choice(["ABNA", "INGB", "RABO", "TRIO", "SNSB", "KNAB"]) + nl_account()
    else:
        raise ValueError(country)
    s = country + iban_check_digits(country, bban) + bban
    assert iban_ok(s) and len(s) == IBAN_LENGTHS[country]
    return s


def iban_bad(country):
    good = iban_value(country)
    cd = int(good[2:4])
    while True:
        other = rng.randint(2, 98)
        bad = good[:2] + "%02d" % other + good[4:]
        if other != cd and not iban_ok(bad):
            return bad


def group4(s, sep=" "):
    return sep.join(s[i : i + 4] for i in range(0, len(s), 4))


NANP_AREAS = ["212", "312", "415", "617", "202", "305", "404", "512", "608", "206", "303",
              "713", "214", "602", "704", "919", "646", "408", "503", "612"]


def nanp(toll_free=False):
    """(area, exchange, line): mostly the 555-01xx range set aside for fiction."""
    area = rng.choice(["800", "888", "877", "866"]) if toll_free else rng.choice(NANP_AREAS)
    if rng.random() < 0.65:
        return area, "555", "01%02d" % rng.randint(0, 99)
    while True:
        exch = "%d%02d" % (rng.randint(2, 9), rng.randint(0, 99))
        if exch[1:] != "11" and exch != "555":
            return area, exch, digits(4)


def fmt_nanp(parts, style):
    a, e, n = parts
    return {
        "paren": "(%s) %s-%s",
        "dash": "%s-%s-%s",
        "dot": "%s.%s.%s",
        "space": "%s %s %s",
        "intl_space": "+1 %s %s %s",
        "intl_dash": "+1-%s-%s-%s",
        "intl_paren": "+1 (%s) %s-%s",
        "one_dash": "1-%s-%s-%s",
    }[style] % (a, e, n)


NANP_STYLES = ["paren", "dash", "dot", "space", "intl_space", "intl_dash", "intl_paren", "one_dash"]


def uk_phone():
    kind = rng.choice(["london", "manchester", "mobile", "london_intl", "mobile_intl"])
    if kind == "london":
        return "020 7946 0%03d" % rng.randint(0, 999)
    if kind == "manchester":
        return "0161 496 0%03d" % rng.randint(0, 999)
    if kind == "mobile":
        return "07700 900%03d" % rng.randint(0, 999)
    if kind == "london_intl":
        return "+44 20 7946 0%03d" % rng.randint(0, 999)
    return "+44 7700 900%03d" % rng.randint(0, 999)


def fr_phone():
    pairs = " ".join(digits(2) for _ in range(4))
    lead = rng.choice(["1", "2", "3", "4", "5", "6", "7"])
    if rng.random() < 0.3:
        return "+33 %s %s" % (lead, pairs)
    return "0%s %s" % (lead, pairs)


def de_phone():
    kind = rng.choice(["berlin", "munich", "frankfurt", "hamburg", "mobile", "intl"])
    if kind == "berlin":
        return "030 " + str(rng.randint(2, 9)) + digits(7)
    if kind == "munich":
        return "089 " + str(rng.randint(2, 9)) + digits(6)
    if kind == "frankfurt":
        return "069 " + str(rng.randint(2, 9)) + digits(7)
    if kind == "hamburg":
        return "040 " + str(rng.randint(2, 9)) + digits(7)
    if kind == "mobile":
        return "0" + rng.choice(["151", "160", "170", "176"]) + " " + str(rng.randint(1, 9)) + digits(7)
    return "+49 " + rng.choice(["30", "69", "89"]) + " " + str(rng.randint(2, 9)) + digits(6)


FIRST = ["maria", "james", "priya", "daniel", "aisha", "tom", "lucia", "kenji", "sarah", "omar",
         "elena", "michael", "grace", "luis", "hannah", "wei", "fatima", "peter", "nora", "david"]
LAST = ["chen", "alvarez", "okafor", "smith", "nguyen", "patel", "kowalski", "brown", "rossi",
        "haddad", "johnson", "murphy", "tanaka", "garcia", "schmidt", "dubois", "ali", "lee"]
MAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "example.com",
                "example.org", "mail.example.net", "contoso.com", "fabrikam.co.uk", "tailspin.de",
                "proton.me", "hotmail.com", "northwindtraders.com", "wingtiptoys.fr"]
BANK_MAIL = ["disputes@northwindbank.com", "wires@northwindbank.com", "helpdesk@northwindbank.com",
             "mortgage.docs@northwindbank.com", "statements@northwindbank.com"]


def email(personal=True):
    if not personal:
        return rng.choice(BANK_MAIL)
    f, l = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice([f + "." + l, f + l, f[0] + l, f + "_" + l, f + "." + l + str(rng.randint(1, 99)),
                        l + "." + f])
    return local + "@" + rng.choice(MAIL_DOMAINS)


def ipv4():
    kind = rng.choice(["doc1", "doc2", "doc3", "ten", "oneseven", "oneninetwo", "public"])
    if kind == "doc1":
        return "192.0.2.%d" % rng.randint(1, 254)
    if kind == "doc2":
        return "198.51.100.%d" % rng.randint(1, 254)
    if kind == "doc3":
        return "203.0.113.%d" % rng.randint(1, 254)
    if kind == "ten":
        return "10.%d.%d.%d" % (rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254))
    if kind == "oneseven":
        return "172.%d.%d.%d" % (rng.randint(16, 31), rng.randint(0, 255), rng.randint(1, 254))
    if kind == "oneninetwo":
        return "192.168.%d.%d" % (rng.randint(0, 255), rng.randint(1, 254))
    return "%d.%d.%d.%d" % (rng.choice([23, 45, 64, 81, 91, 104, 146, 185]), rng.randint(0, 255),
                            rng.randint(0, 255), rng.randint(1, 254))


def ipv6():
    h = lambda: "%x" % rng.randint(1, 0xFFFF)
    kind = rng.choice(["doc_full", "doc_compressed", "link_local", "doc_short", "ula"])
    if kind == "doc_full":
        return "2001:0db8:" + ":".join("%04x" % rng.randint(0, 0xFFFF) for _ in range(6))
    if kind == "doc_compressed":
        return "2001:db8:%s:%s::%s:%s" % (h(), h(), h(), h())
    if kind == "link_local":
        return "fe80::%s:%s:%s:%s" % (h(), h(), h(), h())
    if kind == "doc_short":
        return "2001:db8::%s" % h()
    return "fd%02x:%s:%s::%s" % (rng.randint(0, 255), h(), h(), h())


AWS_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+"


def aws_secret():
    while True:
        s = "".join(rng.choice(AWS_ALPHABET) for _ in range(40))
        if (any(c.isupper() for c in s) and any(c.islower() for c in s)
                and any(c.isdigit() for c in s)):
            return s


# ---------------------------------------------------------------------------------------
# Fillers (plain text, never labelled)

MERCHANTS = ["STREAMFLIX", "Blue Bottle Coffee", "Shell 0457", "Amazon Marketplace", "Delta Air Lines",
             "Whole Foods", "Uber Trip", "Target T-1187", "Apple.com/bill", "Marriott Chicago",
             "Home Depot", "Spotify", "Costco Gas", "Walgreens", "Best Buy"]
CITIES = ["Madison, WI", "Tulsa, OK", "Austin, TX", "Portland, OR", "Columbus, OH", "Denver, CO",
          "Raleigh, NC", "Boise, ID", "Omaha, NE", "Tampa, FL"]
NAMES = ["Maria Chen", "James Okafor", "Priya Patel", "Daniel Ortiz", "Aisha Haddad", "Tom Murphy",
         "Lucia Rossi", "Kenji Tanaka", "Sarah Johnson", "Omar Ali"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def amount(lo=5, hi=5000):
    return "${:,.2f}".format(rng.randint(lo * 100, hi * 100) / 100)


def day():
    return "%s %d" % (rng.choice(MONTHS), rng.randint(1, 28))


FILLERS = {
    "<amount>": amount,
    "<bigamount>": lambda: amount(10000, 250000),
    "<merchant>": lambda: rng.choice(MERCHANTS),
    "<city>": lambda: rng.choice(CITIES),
    "<name>": lambda: rng.choice(NAMES),
    "<day>": day,
    "<n>": lambda: str(rng.randint(2, 9)),
}


def fill(template):
    for key, make in FILLERS.items():
        while key in template:
            template = template.replace(key, make(), 1)
    return template


# ---------------------------------------------------------------------------------------
# Rows


class Corpus:
    def __init__(self):
        self.rows = []

    def add(self, kind, template, *values):
        """template: text with one {} per value; a value is (TYPE, text) or plain text."""
        pieces = fill(template).split("{}")
        if len(pieces) != len(values) + 1:
            raise ValueError("template %r takes %d values, got %d" % (template, len(pieces) - 1, len(values)))
        text, entities = pieces[0], []
        for value, piece in zip(values, pieces[1:]):
            if isinstance(value, tuple):
                etype, value = value
                entities.append({"type": etype, "start": len(text), "end": len(text) + len(value)})
            text += value + piece
        self.rows.append({"id": "ba-%04d" % (len(self.rows) + 1), "text": text,
                          "entities": entities, "kind": kind})


class Cycle:
    """Templates in a shuffled order, reshuffled at each pass, so each is used evenly."""

    def __init__(self, templates):
        self.templates, self.queue = list(templates), []

    def next(self):
        if not self.queue:
            self.queue = self.templates[:]
            rng.shuffle(self.queue)
        return self.queue.pop()


def paired(corpus, kind, pairs, count):
    """count rows of kind from (template, [maker per value]) pairs."""
    cyc = Cycle(pairs)
    for _ in range(count):
        template, makers = cyc.next()
        corpus.add(kind, template, *[make() for make in makers])


def many(corpus, kind, templates, count, make):
    """count rows of kind: make() gives the values for one template."""
    cyc = Cycle(templates)
    for _ in range(count):
        corpus.add(kind, cyc.next(), *make())


# ---------------------------------------------------------------------------------------
# Templates: valid values

CARD_T = [
    "The card we have on file for autopay is {}. If that is no longer correct, update it under Settings > Payments.",
    "I found the charge. It was made with card {} on <day> at <merchant> in <city>.",
    "Your new debit card number is {} and it should arrive in <n> business days. Activate it in the app before first use.",
    "To open the dispute, please confirm that {} is the card that was charged <amount> by <merchant>.",
    "I have frozen {} as you asked. You can unfreeze it at any time from the Cards tab.",
    "Here is the virtual card for online purchases: {}. The expiry date and CVV are shown in the app.",
    "We blocked {} after this morning's fraud alert. A replacement with a new number ships today by overnight mail.",
    "Your payment of <amount> to the credit card {} was received on <day> and will post tonight.",
    "You asked which card is tied to your travel notice: it is {}.",
    "Your corporate card {} has a monthly limit of $15,000.00, and <amount> of it is used this cycle.",
    "Sure. The last transaction on {} was <amount> at <merchant> on <day>.",
    "The card you added to your digital wallet, {}, is now linked to your checking account.",
    "Both transactions were made with {}. I have flagged them for review and you will hear from us within <n> business days.",
    "Cards on your profile: {} (debit) and {} (credit). Which one would you like to replace?",
]

SSN_T = [
    "The SSN on your mortgage application is {}. Please confirm it matches your Social Security card.",
    "I updated your tax profile with Social Security number {} as requested.",
    "For the joint account, the co-owner's SSN {} still needs to be verified before we can open it.",
    "Your 1099-INT will be issued under SSN {}. If that is wrong, reply with the correct number.",
    "We matched your identity using your date of birth and Social Security number {}.",
    "According to the credit bureau report, the SSN on this file is {}.",
    "Beneficiary details saved: <name>, spouse, SSN {}.",
    "The W-9 you uploaded lists SSN {}, which matches our records.",
    "Social Security No. {} is now attached to the trust account as the grantor's taxpayer number.",
    "I see two SSNs on the application: {} for you and {} for your co-borrower. Both have been verified.",
]

ITIN_T = [
    "Your ITIN {} has been added to the account in place of an SSN.",
    "We can open the account with an Individual Taxpayer Identification Number. The ITIN you provided, {}, is now on file.",
    "Interest income on your savings will be reported to the IRS under ITIN {}.",
    "The taxpayer ID on the loan file is ITIN {}. An ITIN expires if it is not used on a return for three years, so keep it current.",
    "I have updated the W-8 details: ITIN {}, country of residence Mexico.",
    "Your individual taxpayer identification number, {}, was verified with the IRS this morning.",
]

EMAIL_T = [
    "I've sent the dispute form to {}. It should arrive within a few minutes.",
    "Your monthly statements will now be emailed to {} on the 1st of each month.",
    "The sign-in email on your online banking profile is {}. Would you like to change it?",
    "Please send the signed wire authorization to {} before 3:00 PM ET.",
    "You can reach your relationship manager, <name>, at {}.",
    "We sent a one-time passcode to {}. It expires in 10 minutes.",
    "That message came from {}, which is not one of our addresses. Please don't click any links in it.",
    "For help desk tickets, write to {} and include your employee ID.",
    "Your mortgage documents were shared with {} and with your co-borrower at {}.",
    "Done. Balance alerts below <amount> will go to {} from now on.",
]

PHONE_US_CTX_T = [
    "You can call our fraud team at {}, available 24/7.",
    "The phone number on your profile is {}. Is that still the best way to reach you?",
    "Your mortgage officer's direct number is {}.",
    "We will text verification codes to your mobile {}.",
    "Call {} to activate your new card.",
    "The <city> branch telephone is {}. They open at 9:00 AM.",
    "If you are traveling, save our collect-call line {} in your phone.",
    "I updated your cell to {} and removed the old landline.",
]

PHONE_US_NOCTX_T = [
    "Reach the disputes desk at {} between 8 AM and 8 PM ET.",
    "The <city> branch can be reached at {}.",
    "Questions about the wire? Our payments desk: {}.",
    "If the card is lost abroad, dial {} and ask for card services.",
    "Contact <name> in Business Banking at {} or stop by the branch.",
    "Fraud hotline: {}. Have your card ready.",
    "For the payoff quote, ring our loan servicing team at {}.",
    "Text STOP to {} to end the SMS alerts.",
]

PHONE_UK_T = [
    "Call our London office on {} for sterling transfers.",
    "Your UK mobile {} is registered for one-time passcodes.",
    "The Canary Wharf branch is on {} during business hours.",
    "Ring {} and ask for the international payments team.",
    "Our UK card services line is {}, open 8am to 8pm.",
]

PHONE_FR_T = [
    "Our Paris branch can be reached on {}.",
    "Call the Lyon office at {} for euro transfers.",
    "Your French mobile {} is now set up for payment alerts.",
    "The notary's office in Bordeaux: {}.",
]

PHONE_DE_T = [
    "The Berlin office: {}.",
    "Call {} for the Frankfurt trade finance desk.",
    "Your German number {} has been saved for SEPA payment confirmations.",
    "Our Munich correspondent bank can be reached at {} on weekdays.",
]

IBAN_T = [
    "Please send the EUR payment to IBAN {}, BIC {}.",
    "The beneficiary's IBAN is {}. Double-check it with the recipient before you send.",
    "Your incoming SEPA transfer of <amount> came from account {}.",
    "For international wires into your account, give the sender {} and our SWIFT code.",
    "I've saved {} as a new payee named \"Landlord Madrid\".",
    "The transfer to {} was returned by the receiving bank because the account name did not match.",
    "Your euro account's IBAN is {}; the same details appear on page 1 of your statement.",
]
BICS = {"GB": ["NWBKGB2L", "BARCGB22", "LOYDGB2L"], "DE": ["COBADEFFXXX", "DEUTDEFF", "INGDDEFFXXX"],
        "FR": ["BNPAFRPP", "SOGEFRPP", "AGRIFRPP"], "ES": ["BBVAESMM", "CAIXESBB", "BSCHESMM"],
        "NL": ["ABNANL2A", "INGBNL2A", "RABONL2U"]}

ABA_T = [
    "For direct deposit, use routing number {} and the account number shown in the app.",
    "Incoming domestic wires: ABA {}, beneficiary Northwind Bank, and put your account number in the memo.",
    "Our wire routing number is {}. It differs from the ACH routing number printed on your checks.",
    "The ABA routing number for your branch is {}.",
    "Yes, {} is the correct routing number for ACH and direct deposit.",
    "Wire instructions: bank ABA/routing {}, beneficiary your full name, reference \"loan payoff\".",
    "To set up payroll, give your employer routing {} and your checking account number.",
    "Fedwire ABA: {}. Domestic wires sent after 4:00 PM ET go out the next business day.",
]

IP4_T = [
    "Your VPN session is coming from {}, which is outside the allowed range, so the login was blocked.",
    "Please add {} to the allow list for the treasury portal.",
    "The sign-in attempt came from IP address {} in a country you have not used before.",
    "Point the laptop's DNS to {} and restart it.",
    "The branch printer has the static address {}.",
    "We saw three failed logins from {} at 2:14 AM, so we locked online banking for your safety.",
]

IP6_T = [
    "The failed logins came from {}.",
    "Your workstation's IPv6 address is {}. Send that to the help desk with your ticket.",
    "The API gateway only accepts traffic from {} for your firm's integration.",
    "Your session was opened from {} and has been signed out.",
]

AWS_T = [
    "In ~/.aws/credentials, set aws_secret_access_key = {} under the [treasury-prod] profile.",
    "Secret access key: {}. Rotate it after the migration is finished.",
    "The leaked config contained \"SecretAccessKey\": \"{}\". We have disabled that key.",
    "Run export AWS_SECRET_ACCESS_KEY={} before the statement export job, then unset it.",
    "Your new AWS secret access key is {}. It is shown only once, so store it in the vault now.",
    "The pipeline log printed SecretAccessKey={} in plain text; the help desk has revoked it.",
]


def gen_valid(c):
    brands = ["visa", "mastercard", "amex", "discover"]

    def card_value():
        brand = rng.choice(brands)
        sep = rng.choice([" ", "-", ""])
        return (CARD, group_card(card_number(brand), sep))

    cyc = Cycle(CARD_T)
    for _ in range(40):
        t = cyc.next()
        c.add("card", t, *[card_value() for _ in range(t.count("{}"))])

    def ssn_value():
        return (SSN, fmt_ssn(ssn_digits(), rng.choice(["-", "-", "-", " "])))

    cyc = Cycle(SSN_T)
    for _ in range(20):
        t = cyc.next()
        c.add("ssn", t, *[ssn_value() for _ in range(t.count("{}"))])

    many(c, "itin", ITIN_T, 12, lambda: [(ITIN, fmt_ssn(itin_digits(), rng.choice(["-", "-", " "])))])

    cyc = Cycle(EMAIL_T)
    for _ in range(20):
        t = cyc.next()
        personal = "help desk" not in t and "wire authorization" not in t
        c.add("email", t, *[(EMAIL, email(personal)) for _ in range(t.count("{}"))])

    many(c, "phone_us", PHONE_US_CTX_T, 14,
         lambda: [(PHONE, fmt_nanp(nanp(rng.random() < 0.2), rng.choice(NANP_STYLES)))])
    many(c, "phone_us_nocontext", PHONE_US_NOCTX_T, 12,
         lambda: [(PHONE, fmt_nanp(nanp(rng.random() < 0.2), rng.choice(NANP_STYLES)))])
    many(c, "phone_uk", PHONE_UK_T, 8, lambda: [(PHONE, uk_phone())])
    many(c, "phone_fr", PHONE_FR_T, 6, lambda: [(PHONE, fr_phone())])
    many(c, "phone_de", PHONE_DE_T, 6, lambda: [(PHONE, de_phone())])

    cyc = Cycle(IBAN_T)
    for i in range(25):
        country = ["GB", "DE", "FR", "ES", "NL"][i % 5]
        value = iban_value(country)
        shown = group4(value) if i % 2 == 0 else value
        t = cyc.next()
        vals = [(IBAN, shown)]
        if t.count("{}") == 2:
            vals.append(rng.choice(BICS[country]))
        c.add("iban_grouped" if i % 2 == 0 else "iban_unspaced", t, *vals)

    many(c, "aba", ABA_T, 14, lambda: [(ABA, aba_number())])
    many(c, "ipv4", IP4_T, 12, lambda: [(IP, ipv4())])
    many(c, "ipv6", IP6_T, 8, lambda: [(IP, ipv6())])
    many(c, "aws_secret", AWS_T, 12, lambda: [(AWS, aws_secret())])


# ---------------------------------------------------------------------------------------
# Unicode variants of valid values

FULLWIDTH, ARABIC_INDIC, DEVANAGARI = 0xFF10, 0x0660, 0x0966
ZWSP, ZWJ, WJ, SHY = "\u200b", "\u200d", "\u2060", "\u00ad"
NBSP, NNBSP, FIGSP = "\u00a0", "\u202f", "\u2007"
EN_DASH, EM_DASH, MINUS = "\u2013", "\u2014", "\u2212"


def script_digits(s, base):
    return "".join(chr(base + int(ch)) if "0" <= ch <= "9" else ch for ch in s)


def insert_at(s, ch, pos=None):
    """ch inserted between two digits of s (at a random place unless pos is given)."""
    if pos is None:
        spots = [i for i in range(1, len(s)) if s[i - 1].isdigit() and s[i].isdigit()]
        pos = rng.choice(spots)
    return s[:pos] + ch + s[pos:]


UNI_CARD_T = [
    "The card number you pasted, {}, belongs to your Platinum card, and I have locked it.",
    "Your replacement card {} has been activated.",
    "I can see card {} on your profile; the pending charge of <amount> is from <merchant>.",
    "Autopay will now draw from card {} on the 5th of each month.",
    "Got it: the disputed purchase was on card {}.",
]
UNI_SSN_T = [
    "The SSN we have on file is {}.",
    "Your Social Security number {} has been verified.",
    "I've corrected the SSN on the application to {}.",
    "SSN {} is linked to this account as the primary owner.",
]
UNI_PHONE_T = [
    "Call us at {} if you did not make this purchase.",
    "Your phone number was updated to {}.",
    "Our card services team is at {} around the clock.",
]


def gen_unicode(c):
    cc = Cycle(UNI_CARD_T)
    cs = Cycle(UNI_SSN_T)
    cp = Cycle(UNI_PHONE_T)

    def card(sep=" ", brand=None):
        return group_card(card_number(brand or rng.choice(["visa", "mastercard", "discover"])), sep)

    def ssn(sep="-"):
        return fmt_ssn(ssn_digits(), sep)

    # Digits of other scripts.
    for base, name in ((FULLWIDTH, "fullwidth"), (ARABIC_INDIC, "arabic_indic"), (DEVANAGARI, "devanagari")):
        for sep in ([" ", "-", ""] if base == FULLWIDTH else [" ", ""]):
            c.add("unicode_%s_digits_card" % name, cc.next(), (CARD, script_digits(card(sep), base)))
        for sep in (["-", " "] if base != DEVANAGARI else ["-"]):
            c.add("unicode_%s_digits_ssn" % name, cs.next(), (SSN, script_digits(ssn(sep), base)))
        if base == FULLWIDTH:
            c.add("unicode_fullwidth_digits_ssn", cs.next(), (SSN, script_digits(ssn("-"), base)))
    c.add("unicode_devanagari_digits_ssn", cs.next(), (SSN, script_digits(ssn(" "), DEVANAGARI)))

    # Invisible characters inside the value.
    for ch, name, n_card, n_ssn in ((ZWSP, "zwsp", 2, 2), (ZWJ, "zwj", 2, 1), (WJ, "word_joiner", 2, 1),
                                    (SHY, "soft_hyphen", 2, 1)):
        for i in range(n_card):
            sep = [" ", ""][i % 2]
            c.add("unicode_%s_card" % name, cc.next(), (CARD, insert_at(card(sep), ch)))
        for _ in range(n_ssn):
            c.add("unicode_%s_ssn" % name, cs.next(), (SSN, insert_at(ssn("-"), ch)))

    # Unusual spaces as group separators.
    for ch, name in ((NBSP, "nbsp"), (NNBSP, "narrow_nbsp"), (FIGSP, "figure_space")):
        for _ in range(2):
            c.add("unicode_%s_card" % name, cc.next(), (CARD, card(ch)))
    c.add("unicode_nbsp_phone", cp.next(), (PHONE, fmt_nanp(nanp(), "paren").replace(" ", NBSP)))
    c.add("unicode_figure_space_phone", cp.next(), (PHONE, fmt_nanp(nanp(), "space").replace(" ", FIGSP)))
    c.add("unicode_nbsp_ssn", cs.next(), (SSN, ssn(NBSP)))
    c.add("unicode_narrow_nbsp_iban",
          "Please send the euros to IBAN {} and include the invoice reference.",
          (IBAN, group4(iban_value("DE"), NNBSP)))
    c.add("unicode_nbsp_iban", "The beneficiary IBAN is {}.", (IBAN, group4(iban_value("FR"), NBSP)))

    # Dashes as separators.
    for ch, name, n_ssn, n_phone in ((EN_DASH, "en_dash", 2, 1), (EM_DASH, "em_dash", 1, 1),
                                     (MINUS, "minus_sign", 2, 1)):
        for _ in range(n_ssn):
            c.add("unicode_%s_ssn" % name, cs.next(), (SSN, ssn(ch)))
        for _ in range(n_phone):
            c.add("unicode_%s_phone" % name, cp.next(), (PHONE, fmt_nanp(nanp(), "dash").replace("-", ch)))
    c.add("unicode_en_dash_card", cc.next(), (CARD, card(EN_DASH)))

    # ASCII punctuation that is unusual for a card.
    for sep, name in ((".", "dotted"), ("/", "slashed"), ("--", "doubled_dash"), ("  ", "doubled_space")):
        for _ in range(2 if name != "doubled_space" else 1):
            c.add("sep_%s_card" % name, cc.next(), (CARD, card(sep)))
    c.add("sep_dotted_ssn", cs.next(), (SSN, ssn(".")))

    # Letters glued to the value.
    c.add("glued_ssn", "Confirmed: SSN{} is on the account.", (SSN, ssn("-")))
    c.add("glued_ssn", "Your record shows ssn:{} and a verified address.", (SSN, ssn("-")))
    c.add("glued_ssn", "Reference copied from the form: SocialSecurity#{}.", (SSN, ssn("")))
    c.add("glued_card", "The note on the dispute says card#{} was used twice.", (CARD, card("")))
    c.add("glued_card", "Payment source: acct{}, charged <amount>.", (CARD, card("")))
    c.add("glued_card", "From the receipt: Card:{} APPROVED.", (CARD, card("-")))
    c.add("glued_card", "The merchant's log line reads PAN={} with status declined.", (CARD, card("")))
    c.add("glued_itin", "The tax form shows ITIN{} for the account holder.", (ITIN, fmt_ssn(itin_digits())))

    # Fullwidth at sign, fullwidth digits in a phone.
    c.add("unicode_fullwidth_at_email", "Statements will be emailed to {} from now on.",
          (EMAIL, email().replace("@", "\uff20")))
    c.add("unicode_fullwidth_at_email", "The alert was sent from {}; it is not our address.",
          (EMAIL, email().replace("@", "\uff20")))
    c.add("unicode_fullwidth_digits_phone", cp.next(),
          (PHONE, script_digits(fmt_nanp(nanp(), "dash"), FULLWIDTH)))


# ---------------------------------------------------------------------------------------
# Look-alikes: no entity

STATES = [("Madison", "WI", "537"), ("Austin", "TX", "787"), ("Columbus", "OH", "432"),
          ("Denver", "CO", "802"), ("Raleigh", "NC", "276"), ("Portland", "OR", "972"),
          ("Tampa", "FL", "336"), ("Boise", "ID", "837"), ("Omaha", "NE", "681"), ("Tulsa", "OK", "741")]

ZIP_T = [
    "Your new card will be mailed to 1200 Main St, {}. Allow <n> business days.",
    "We updated your mailing address to 44 Lake Shore Dr, Apt 3B, {}.",
    "The nearest branch with a notary is at 310 State Street, {}.",
    "Statements for this account go to PO Box 2291, {}.",
    "The address on the dispute form is 87 Elm Ave, {}. Is that still current?",
    "Your billing ZIP for online purchases is the one in {}, so enter all nine digits if the site asks.",
]

DATE_T = [
    "Your statement for the period ending {} is now available under Documents.",
    "The dispute was opened on {} and the merchant has 30 days to respond.",
    "Your certificate of deposit matures on {}; we will renew it unless you tell us otherwise.",
    "The last login to online banking was on {} from your usual device.",
    "The mortgage rate lock expires on {}, so please return the signed disclosures before then.",
]

DATE_LABEL_T = [
    "Under \"Card number:\" the form shows {}, which looks like a date of birth typed into the wrong field.",
    "The card number: {} entry on the upload is a date, not a card, so please fill in that field again.",
    "Account number: {} is what the scanner read, but that is a date, not an account.",
    "In the field labelled SSN: {} was entered, which is a date; please correct it before we submit.",
    "Card number: {} appears in the export because the columns were shifted; the real card column is empty.",
    "Routing number field: {} (the scanner picked up a date). Please type the routing digits by hand.",
]

TIME_T = [
    "The transfer was submitted at {} ET and will settle today.",
    "Your card was declined at {} because the daily limit had been reached.",
    "The outage started at {} UTC and online banking was back by 3:10 PM.",
    "The fraud alert was sent at {}; you replied YES, so the purchase went through.",
]


VERSION_T = [
    "Please update to mobile app {} or later; older versions can't scan checks.",
    "You're on app version {}. The fix for the login loop is in the next release.",
    "The help desk confirmed the issue in version {} of the desktop client.",
    "Mobile app {} adds card controls for international purchases.",
    "After the update to version {}, clear the app cache and sign in again.",
    "The bank's app build {} rolled out to Android today.",
]

ORDER_T = [
    "I see a refund from Amazon for order number {} that should post in <n> days.",
    "The merchant shows order number {} as delivered, so the dispute needs a photo of the package.",
    "Your checkbook order number {} shipped this morning.",
    "Per the merchant, order {} was cancelled and <amount> will be refunded.",
]


INVOICE_T = [
    "The vendor's invoice number {} matches the ACH payment of <amount>.",
    "I've attached invoice {} to the wire so the beneficiary can reconcile it.",
    "Your safe deposit box fee, invoice number {}, was paid on <day>.",
]

CASE_T = [
    "Your case number is {}. Keep it handy if you call back.",
    "I've opened help desk case {} for the VPN issue.",
    "Fraud case number {} has been assigned to an investigator.",
    "The dispute is tracked under case {}; expect an update within 10 business days.",
]

REF_T = [
    "The wire went out with reference number {}.",
    "Your payment confirmation reference number is {}.",
    "Use reference number {} if you contact the receiving bank.",
    "The loan payoff was posted with reference {}.",
]

BADCARD_T = [
    "The card number you entered, {}, failed validation, so please re-enter it carefully.",
    "{} isn't a valid card number; one of the digits may be mistyped.",
    "We couldn't find card {} on your profile. The check digit doesn't match, so it may have a typo.",
    "The form rejected card {} because it does not pass the card number check.",
]

BADIBAN_T = [
    "The IBAN {} you gave fails the check digits, so the payment can't be sent.",
    "{} isn't a valid IBAN; please ask the beneficiary to confirm it.",
    "Our system rejected IBAN {}: the checksum is wrong.",
]

BADSSN_T = [
    "The SSN you typed, {}, is not a valid Social Security number; please check it.",
    "{} can't be an SSN because no Social Security numbers are issued in that range.",
    "The application was rejected because {} is not a valid SSN.",
]

NINE_T = [
    "Your insurance claim number is {}; the adjuster will call within two days.",
    "Confirmation number {} is for the branch appointment on <day>.",
    "Your loan application ID is {}.",
    "The merchant's dispute claim {} is now closed in your favor.",
]

SERIAL_T = [
    "The hardware token's serial {} is registered to your login.",
    "Please read the serial {} from the back of the card reader to the help desk.",
    "Your laptop asset tag is {}; IT will swap it on <day>.",
    "The check scanner with device ID {} needs a firmware update.",
]





def lookalike_clean(s):
    """No accidental valid card in a look-alike: no run of whole digit groups (split at a
    space or a dash) that makes 13-19 digits with a card IIN and passes Luhn."""
    for m in re.finditer(r"\d[\d -]*\d", s):
        groups = re.split(r"[ -]+", m.group())
        for i in range(len(groups)):
            for j in range(i + 1, len(groups) + 1):
                d = "".join(groups[i:j])
                if 13 <= len(d) <= 19 and card_brand(d) and luhn_ok(d):
                    return False
    return True


def clean(make):
    while True:
        s = make()
        if lookalike_clean(s):
            return s


def gen_lookalikes(c):
    def zip4():
        city, st, pre = rng.choice(STATES)
        return "%s, %s %s%02d-%04d" % (city, st, pre, rng.randint(1, 99), rng.randint(1, 9999))

    many(c, "lookalike_zip4", ZIP_T, 12, lambda: [zip4()])

    def iso_date(lo=1950, hi=2026):
        return "%04d-%02d-%02d" % (rng.randint(lo, hi), rng.randint(1, 12), rng.randint(1, 28))

    many(c, "lookalike_iso_date", DATE_T, 10, lambda: [iso_date(2024, 2027)])
    many(c, "lookalike_date_after_label", DATE_LABEL_T, 6, lambda: [iso_date(1950, 2005)])
    many(c, "lookalike_time", TIME_T, 6,
         lambda: ["%02d:%02d:%02d" % (rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))])

    def dollars(lo, hi):
        return lambda: amount(lo, hi)

    def bare(lo, hi):
        return lambda: "{:,.2f}".format(rng.randint(lo * 100, hi * 100) / 100)

    paired(c, "lookalike_amount", [
        ("Your available balance is {} and the current balance is {}.",
         [dollars(1000, 9999), dollars(1000, 9999)]),
        ("The wire of {} to the title company was released this afternoon.", [dollars(100000, 900000)]),
        ("The disputed charge of {} has been credited back to your account provisionally.", [dollars(1000, 4999)]),
        ("Your payoff amount, good through the end of the month, is {}.", [dollars(150000, 700000)]),
        ("Total deposits this quarter: {} USD, against a minimum of 25,000.00 for the fee waiver.",
         [bare(1000000, 9000000)]),
        ("The operating account closed the day at {} and the sweep moved {} to savings.",
         [bare(1000000, 9000000), bare(10000, 99999)]),
    ], 10)

    def version():
        style = rng.choice(["four", "three", "four", "ipv4ish"])
        if style == "four":
            return "%d.%d.%d.%d" % (rng.randint(8, 12), rng.randint(0, 9), rng.randint(0, 9), rng.randint(1000, 9999))
        if style == "three":
            return "%d.%d.%d" % (rng.randint(2, 12), rng.randint(0, 30), rng.randint(0, 9))
        return "%d.%d.%d.%d" % (rng.randint(3, 12), rng.randint(0, 20), rng.randint(0, 9), rng.randint(1, 250))

    many(c, "lookalike_version", VERSION_T, 12, lambda: [version()])

    def order():
        return rng.choice([
            lambda: "%03d-%07d-%07d" % (rng.randint(100, 999), rng.randint(0, 9999999), rng.randint(0, 9999999)),
            lambda: "ORD-%08d" % rng.randint(0, 99999999),
            lambda: "CK-%06d" % rng.randint(0, 999999),
        ])()

    many(c, "lookalike_order_number", ORDER_T, 8, lambda: [clean(order)])

    def ups():
        return "1Z%s%s%s" % ("".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTVWXYZ") for _ in range(6)),
                             digits(2), digits(8))

    def usps():
        return "9400 1%s %s %s %s %s" % (digits(3), digits(4), digits(4), digits(4), digits(2))

    def fedex():
        return "%s %s %s" % (digits(4), digits(4), digits(4))

    paired(c, "lookalike_tracking_number", [
        ("Your replacement card shipped by UPS, tracking number {}.", [lambda: clean(ups)]),
        ("The new checkbook is on its way; USPS tracking number {}.", [lambda: clean(usps)]),
        ("FedEx tracking number {} shows your documents were delivered to the branch.", [lambda: clean(fedex)]),
        ("Your hardware token went out by UPS Ground; tracking number {}.", [lambda: clean(ups)]),
    ], 8)
    many(c, "lookalike_invoice_number", INVOICE_T, 5,
         lambda: [rng.choice(["INV-2026-%06d", "%08d", "INV%07d"]) % rng.randint(0, 999999)])
    many(c, "lookalike_case_number", CASE_T, 6,
         lambda: [rng.choice(["CS%07d", "%08d", "HD-%06d", "FRD-2026-%05d"]) % rng.randint(0, 99999)])
    many(c, "lookalike_reference_number", REF_T, 8,
         lambda: [rng.choice(["2026%02d%02d-%06d" % (rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 99999)),
                              "FT26%03d%08d" % (rng.randint(1, 365), rng.randint(0, 99999999)),
                              "REF 2026-%04d-%04d" % (rng.randint(0, 9999), rng.randint(0, 9999))])])

    def bad_card():
        brand = rng.choice(["visa", "visa", "mastercard", "amex", "discover"])
        return group_card(card_invalid(brand), rng.choice([" ", "-", ""]))

    many(c, "lookalike_luhn_invalid_card", BADCARD_T, 12, lambda: [bad_card()])
    many(c, "lookalike_bad_iban", BADIBAN_T, 8,
         lambda: [(lambda s: group4(s) if rng.random() < 0.5 else s)(iban_bad(rng.choice(list(IBAN_LENGTHS))))])
    many(c, "lookalike_invalid_ssn", BADSSN_T, 10, lambda: [fmt_ssn(bad_ssn_digits())])

    def nine():
        while True:
            d9 = digits(9)
            if ssn_ok(d9) and not aba_ok(d9):
                return d9

    many(c, "lookalike_nine_digit_labelled", NINE_T, 6, lambda: [nine()])
    many(c, "lookalike_serial", SERIAL_T, 8,
         lambda: [rng.choice(["%s %s %s" % (digits(4), digits(4), digits(4)),
                              "SN-%s-%s" % (digits(4), digits(6)),
                              "%s-%s-%s" % (digits(3), digits(3), digits(4))])])

    last4 = lambda: digits(4)

    def masked():
        d = digits(4)
        return rng.choice(["****" + d, "XXXX-XXXX-XXXX-" + d, "\u2022\u2022\u2022\u2022 " + d, "x" + d, "*" * 6 + d])

    paired(c, "lookalike_masked_account", [
        ("Your checking account ending in {} has a balance of <amount>.", [last4]),
        ("A charge of <amount> was made on the card ending {}.", [last4]),
        ("Autopay will draw from the account ending in {} on the 15th.", [last4]),
        ("I see two cards on your profile: {} and {}.", [masked, masked]),
        ("Your savings account {} earned <amount> in interest this month.", [masked]),
        ("The deposit went to account {}.", [masked]),
    ], 10)

    def pct(lo, hi, places=2):
        return lambda: "%.*f%%" % (places, rng.randint(lo * 100, hi * 100) / 100)

    paired(c, "lookalike_percentage", [
        ("Your card's purchase APR is {} and the cash advance APR is {}.", [pct(15, 24), pct(25, 29)]),
        ("The high-yield savings account currently pays {} APY.", [pct(3, 5)]),
        ("Your mortgage rate is locked at {} for 45 days.", [lambda: "%.3f%%" % (rng.randint(40, 60) / 8)]),
        ("Foreign transactions on this card carry a {} fee.", [lambda: rng.choice(["3%", "2.7%", "1%"])]),
    ], 6)

    paired(c, "lookalike_build_number", [
        ("The help desk pushed build {} of the teller app to your branch last night.",
         [lambda: "2026%02d%02d.%d" % (rng.randint(1, 12), rng.randint(1, 28), rng.randint(1, 9))]),
        ("Firmware {} fixes the card reader timeout.",
         [lambda: "%d.%d.%d-b%d" % (rng.randint(1, 9), rng.randint(0, 9), rng.randint(0, 9), rng.randint(1000, 9999))]),
        ("Please reboot after installing patch {}; it closes the VPN vulnerability.",
         [lambda: "KB%07d" % rng.randint(0, 9999999)]),
    ], 6)


# ---------------------------------------------------------------------------------------
# Mixed rows: real values beside look-alikes


def gen_mixed(c):
    def card(sep=" "):
        return (CARD, group_card(card_number(rng.choice(["visa", "mastercard", "discover"])), sep))

    def nanp_phone():
        return (PHONE, fmt_nanp(nanp(), rng.choice(NANP_STYLES)))

    def ref():
        return "2026%02d%02d-%06d" % (rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 99999))

    def zip4():
        city, st, pre = rng.choice(STATES)
        return "%s, %s %s%02d-%04d" % (city, st, pre, rng.randint(1, 99), rng.randint(1, 9999))

    def date():
        return "2026-%02d-%02d" % (rng.randint(1, 12), rng.randint(1, 28))

    rows = [
        ("Your card {} was charged {} on {}. The dispute reference number is {}.",
         lambda: [card(), "$4,111.11", date(), ref()]),
        ("Card {} is active. The card ending in {} was closed on {}.",
         lambda: [card("-"), digits(4), date()]),
        ("The card number {} failed the check, but {} on your profile is valid, so I used that one.",
         lambda: [group_card(card_invalid("visa"), " "), card()]),
        ("Routing number {} and account ending {} are set for direct deposit; the first deposit lands on {}.",
         lambda: [(ABA, aba_number()), digits(4), date()]),
        ("Wire to routing {} sent at {} ET, reference number {}.",
         lambda: [(ABA, aba_number()), "%02d:%02d:%02d" % (rng.randint(8, 16), rng.randint(0, 59), rng.randint(0, 59)), ref()]),
        ("I emailed the receipt to {} at {}; your case number is {}.",
         lambda: [(EMAIL, email()), "%02d:%02d" % (rng.randint(8, 18), rng.randint(0, 59)), "CS%07d" % rng.randint(0, 9999999)]),
        ("Call {} about tracking number {} if the card has not arrived by {}.",
         lambda: [nanp_phone(), "1Z%s%s" % ("".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTVWXYZ") for _ in range(6)), digits(10)), day()]),
        ("The IBAN {} you gave earlier fails validation; the correct one on file is {}.",
         lambda: [group4(iban_bad("DE")), (IBAN, group4(iban_value("DE")))]),
        ("We verified SSN {} and the mailing address 1200 Main St, {}.",
         lambda: [(SSN, fmt_ssn(ssn_digits())), zip4()]),
        ("The login from {} used mobile app {}, which is out of date.",
         lambda: [(IP, ipv4()), "%d.%d.%d.%d" % (rng.randint(8, 12), rng.randint(0, 9), rng.randint(0, 9), rng.randint(1000, 9999))]),
        ("Build {} of the export job printed aws_secret_access_key = {} on {}; the key is revoked.",
         lambda: ["2026%02d%02d.%d" % (rng.randint(1, 12), rng.randint(1, 28), rng.randint(1, 9)), (AWS, aws_secret()), date()]),
        ("{} is not a valid SSN, but ITIN {} is on file and works for the account opening.",
         lambda: [fmt_ssn(bad_ssn_digits()), (ITIN, fmt_ssn(itin_digits()))]),
        ("Your balance is {} and the payment of {} to card {} posts tonight.",
         lambda: ["{:,.2f}".format(rng.randint(100000, 99999999) / 100), amount(), card("")]),
        ("Order number {} was charged to {}; call {} to dispute it.",
         lambda: [clean(lambda: "%03d-%07d-%07d" % (rng.randint(100, 999), rng.randint(0, 9999999), rng.randint(0, 9999999))),
                  card(), nanp_phone()]),
        ("The help desk saw {} sign in with app version {} and reset your password; details went to {}.",
         lambda: [(IP, ipv6()), "%d.%d.%d" % (rng.randint(2, 12), rng.randint(0, 30), rng.randint(0, 9)), (EMAIL, email())]),
        ("Send EUR to IBAN {} (BIC {}), amount {}, reference {}.",
         lambda: [(IBAN, iban_value("NL")), "INGBNL2A", "\u20ac2.500,00", "INV-2026-%06d" % rng.randint(0, 999999)]),
        ("Your APR is {} and card {} has {} available.",
         lambda: ["%d.%02d%%" % (rng.randint(10, 29), rng.randint(0, 99)), card("-"), amount(500, 20000)]),
        ("For payroll use ABA {}; the bank's phone is {} and the branch ZIP is {}.",
         lambda: [(ABA, aba_number()), nanp_phone(), zip4().split(" ", 2)[2]]),
        ("The UK payee {} was added; ring {} if the first payment on {} fails.",
         lambda: [(IBAN, group4(iban_value("GB"))), (PHONE, uk_phone()), date()]),
        ("Serial {} is your token; the VPN saw it from {} at {}.",
         lambda: ["%s %s %s" % (digits(4), digits(4), digits(4)), (IP, ipv4()),
                  "%02d:%02d:%02d" % (rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))]),
        ("SSN {} is the primary owner's; the co-owner's entry {} is invalid and needs fixing.",
         lambda: [(SSN, fmt_ssn(ssn_digits())), fmt_ssn(bad_ssn_digits())]),
        ("Card {} was declined at {} for {}; the new card {} is already active.",
         lambda: [group_card(card_invalid("mastercard"), "-"), "14:05:33", "$1,234.56", card()]),
        ("Your French mobile {} and email {} are set for alerts, and the statement dated {} is ready.",
         lambda: [(PHONE, fr_phone()), (EMAIL, email()), date()]),
        ("The account ending in {} received a wire via routing number {} with reference {}.",
         lambda: [digits(4), (ABA, aba_number()), ref()]),
        ("From {} the admin console on version {} was opened; the IP is now blocked.",
         lambda: [(IP, ipv4()), "%d.%d.%d" % (rng.randint(2, 12), rng.randint(0, 30), rng.randint(0, 9))]),
        ("Card {} expires {}; your replacement with number {} ships to {}.",
         lambda: [card(), "09/27", card(""), zip4()]),
        ("Berlin desk: {}. Case {} covers the SEPA return of {} to {}.",
         lambda: [(PHONE, de_phone()), "FRD-2026-%05d" % rng.randint(0, 99999), "\u20ac1.250,00",
                  (IBAN, iban_value("DE"))]),
        ("Interest of {} was reported under SSN {} on the 1099-INT dated {}.",
         lambda: [amount(10, 900), (SSN, fmt_ssn(ssn_digits(), " ")), date()]),
        ("Secret access key: {} (created {}, last used from {}).",
         lambda: [(AWS, aws_secret()), date(), (IP, ipv4())]),
        ("Invoice {} for {} was paid from card {} at {}.",
         lambda: ["INV%07d" % rng.randint(0, 9999999), "$12,450.00", card("-"), "09:41:07"]),
    ]
    for template, make in rows:
        c.add("mixed", template, *make())


# ---------------------------------------------------------------------------------------
# Independent checks of every row

PHONE_CONTEXT = ["phone", "number", "telephone", "cell", "mobile", "call", "tel"]
SEPARATORS = set(" -./\u00a0\u202f\u2007\u200b\u200d\u2060\u00ad\u2013\u2014\u2212")


def check_entity(row, ent):
    text = row["text"]
    s, e, t = ent["start"], ent["end"], ent["type"]
    span = text[s:e]
    where = "%s %s %r" % (row["id"], t, span)
    assert 0 <= s < e <= len(text), where
    assert span == span.strip() and span[0] not in ".,;:" and span[-1] not in ".,;:", where
    numeric = t in (CARD, SSN, ITIN, ABA, PHONE)
    if numeric:
        assert unicodedata.category(span[-1]) == "Nd", where
        before = text[s - 1] if s > 0 else " "
        after = text[e] if e < len(text) else " "
        assert unicodedata.category(before) != "Nd" and unicodedata.category(after) != "Nd", where
        others = {ch for ch in span if unicodedata.category(ch) != "Nd"}
    d = unicode_digits(span)
    if t == CARD:
        assert others <= SEPARATORS, where
        assert 13 <= len(d) <= 19 and luhn_ok(d) and card_brand(d), where
    elif t == SSN:
        assert others <= SEPARATORS, where
        assert len(d) == 9 and ssn_ok(d), where
    elif t == ITIN:
        assert others <= SEPARATORS, where
        assert len(d) == 9 and itin_ok(d), where
    elif t == ABA:
        assert span == d and aba_ok(d), where
        near = text[max(0, s - 60) : e + 60].lower()
        assert "routing" in near or "aba" in near or "wire" in near, where
    elif t == IBAN:
        compact = re.sub(r"[ \u00a0\u202f]", "", span)
        assert iban_ok(compact) and len(compact) == IBAN_LENGTHS[compact[:2]], where
    elif t == EMAIL:
        at = "@" if "@" in span else "\uff20"
        local, _, domain = span.partition(at)
        assert local and "." in domain and re.fullmatch(r"[a-z0-9._]+", local), where
    elif t == PHONE:
        assert others <= SEPARATORS | set("+()"), where
        assert 10 <= len(d) <= 13, where
    elif t == IP:
        ipaddress.ip_address(span)
    elif t == AWS:
        assert re.fullmatch(r"[A-Za-z0-9/+]{40}", span), where
    else:
        raise AssertionError(where)


def check_row(row):
    ents = sorted(row["entities"], key=lambda x: x["start"])
    for a, b in zip(ents, ents[1:]):
        assert a["end"] <= b["start"], row["id"]
    for ent in ents:
        check_entity(row, ent)
    # What no label covers must hold no valid value that a reader would take for one.
    text = row["text"]
    masked = list(text)
    for ent in ents:
        masked[ent["start"] : ent["end"]] = "#" * (ent["end"] - ent["start"])
    rest = "".join(masked)
    assert lookalike_clean(rest), (row["id"], "unlabelled valid card")
    assert "@" not in rest and "\uff20" not in rest, (row["id"], "unlabelled email")
    for m in re.finditer(r"(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-])", rest):
        assert not ssn_ok("".join(m.groups())) and not itin_ok("".join(m.groups())), (row["id"], m.group())
    for m in re.finditer(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", rest):
        assert not iban_ok(m.group().replace(" ", "")), (row["id"], m.group())
    for m in re.finditer(r"(?<!\d)\d{9}(?!\d)", rest):
        assert row["kind"] == "lookalike_nine_digit_labelled", (row["id"], "bare nine digits", m.group())
    if row["kind"] == "phone_us_nocontext":
        low = text.lower()
        assert not any(w in low for w in PHONE_CONTEXT), (row["id"], "context word in a no-context row")


def build():
    c = Corpus()
    gen_valid(c)
    gen_unicode(c)
    gen_lookalikes(c)
    gen_mixed(c)
    for row in c.rows:
        check_row(row)
    return c.rows


def serialize(rows):
    return "".join(json.dumps(r, ensure_ascii=True) + "\n" for r in rows)


def main(argv):
    rows = build()
    data = serialize(rows)
    if "--check" in argv:
        with open(OUT, encoding="utf-8") as f:
            same = f.read() == data
        print("pii_corpus: %s is %s" % (os.path.relpath(OUT, ROOT), "up to date" if same else "OUT OF DATE"))
        return 0 if same else 1
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write(data)
    kinds = collections.Counter(r["kind"] for r in rows)
    types = collections.Counter(e["type"] for r in rows for e in r["entities"])
    rows_by_type = collections.Counter(t for r in rows for t in {e["type"] for e in r["entities"]})
    print("wrote %d rows to %s (%d with no entity)" % (len(rows), os.path.relpath(OUT, ROOT),
                                                       sum(1 for r in rows if not r["entities"])))
    print("entities by type (spans / rows):")
    for t, n in sorted(types.items()):
        print("  %-20s %4d / %d" % (t, n, rows_by_type[t]))
    print("rows by kind:")
    for k, n in sorted(kinds.items()):
        print("  %-40s %4d" % (k, n))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
