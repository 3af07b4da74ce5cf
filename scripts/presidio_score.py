#!/usr/bin/env python3
"""Scores Microsoft Presidio's pattern recognizers on labelled PII rows, with no NLP model.

    scripts/presidio CORPUS.jsonl... [--threshold X]... [--json] [--no-context]
                     [--per-file] [--errors N]

(scripts/presidio installs presidio-analyzer into target/presidio and runs this with it on
PYTHONPATH.)

Rows: testdata/pii_corpus/*.jsonl ({"text", "entities": [{"type", "start", "end"}], ...})
and testdata/conformance/pii/pii_vectors.jsonl (the same, or {"text", "expect_none": true}
for a row with no entity). Offsets are character offsets (Python str indices), end
exclusive.

Recognizers: CreditCardRecognizer, UsSsnRecognizer, UsItinRecognizer, EmailRecognizer,
PhoneRecognizer (python-phonenumbers, Presidio's default regions), IbanRecognizer,
AbaRoutingRecognizer and IpRecognizer from presidio_analyzer.predefined_recognizers, each
with its default patterns, validation and context words.

Context words: Presidio raises a match's score when one of its recognizer's context words is
among the few words before it, and it reads those words from the NLP engine's tokens and
lemmas. By default this runs Presidio's AnalyzerEngine (its LemmaContextAwareEnhancer and
duplicate removal included) on an NLP engine made here from spaCy's blank English pipeline:
spaCy's rule-based tokenizer and stop-word list, no trained model, so no lemmatizer either;
a word's lowercase form stands in for its lemma (Presidio matches a context word as a
substring of the lemma, so "cards" still supports "card"). --no-context calls each
recognizer's analyze(text, entities, nlp_artifacts=None) instead, as a caller without any
NLP engine would: patterns and validation only, no context boost.

EmailRecognizer validates the domain with tldextract, which would fetch the public suffix
list from the network on first use; here it uses the list bundled with tldextract instead
(no network, and the same answer on every run).

Scoring (Vigil's Rust scorer uses the same rule): only the 8 types both sides cover (not
AWS_SECRET_KEY); predictions below the threshold are dropped and identical (type, start,
end) predictions count once; a prediction is a true positive when it shares at least one
character with a gold span of the same type, otherwise a false positive; a gold span is
found when some kept prediction of its type overlaps it, otherwise it is a false negative.
precision = tp / (tp + fp); recall = (gold - fn) / gold (tp counts predictions, so two
predictions inside one gold span are two tp and one found gold span). Overall is the micro
sum over the types.
"""

import argparse
import collections
import json
import sys

COVERED = [
    "CREDIT_CARD",
    "US_SSN",
    "US_ITIN",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "IBAN_CODE",
    "ABA_ROUTING_NUMBER",
    "IP_ADDRESS",
]
RECOGNIZERS = [
    "CreditCardRecognizer",
    "UsSsnRecognizer",
    "UsItinRecognizer",
    "EmailRecognizer",
    "PhoneRecognizer",
    "IbanRecognizer",
    "AbaRoutingRecognizer",
    "IpRecognizer",
]


def load_rows(paths):
    rows = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                r = json.loads(line)
                gold = []
                if not r.get("expect_none"):
                    for e in r.get("entities", []):
                        if e["type"] in COVERED:
                            gold.append((e["type"], e["start"], e["end"]))
                rows.append({"file": path, "id": r.get("id", "%s:%d" % (path, n)), "text": r["text"],
                             "gold": gold})
    return rows


# ---------------------------------------------------------------------------------------
# Presidio


def offline_tldextract():
    import tldextract

    extractor = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())
    tldextract.extract = extractor  # EmailRecognizer calls tldextract.extract(...)


def make_recognizers():
    from presidio_analyzer import predefined_recognizers

    recs = []
    for name in RECOGNIZERS:
        cls = getattr(predefined_recognizers, name, None)
        if cls is None:
            sys.exit("presidio_score: this presidio-analyzer has no %s" % name)
        recs.append(cls())
    return recs


def tokenizer_engine_class():
    """An NlpEngine over spacy.blank("en"): tokens and stop words, no model, no entities."""
    import spacy
    from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine

    class TokenizerOnlyNlpEngine(NlpEngine):
        def __init__(self):
            self.nlp = None

        def load(self):
            self.nlp = {"en": spacy.blank("en")}

        def is_loaded(self):
            return self.nlp is not None

        def process_text(self, text, language):
            doc = self.nlp[language](text)
            return NlpArtifacts(
                entities=[],
                tokens=doc,
                tokens_indices=[t.idx for t in doc],
                lemmas=[t.lemma_ or t.lower_ for t in doc],
                nlp_engine=self,
                language=language,
            )

        def process_batch(self, texts, language, batch_size=1, n_process=1, as_tuples=False, **kwargs):
            for item in texts:
                if as_tuples:
                    text, ctx = item
                    yield text, self.process_text(text, language), ctx
                else:
                    yield item, self.process_text(item, language)

        def is_stopword(self, word, language):
            return self.nlp[language].vocab[word].is_stop

        def is_punct(self, word, language):
            return self.nlp[language].vocab[word].is_punct

        def get_supported_entities(self):
            return []

        def get_supported_languages(self):
            return ["en"]

    return TokenizerOnlyNlpEngine


def predictor(context):
    """A function text -> [(type, start, end, score)] at threshold 0, and a description."""
    offline_tldextract()
    from presidio_analyzer import EntityRecognizer

    recs = make_recognizers()
    if not context:
        def predict(text):
            results = []
            for r in recs:
                results += r.analyze(text, entities=COVERED, nlp_artifacts=None)
            results = EntityRecognizer.remove_duplicates(results)
            return [(x.entity_type, x.start, x.end, x.score) for x in results]

        return predict, "recognizers' analyze(nlp_artifacts=None): no context words"

    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    registry = RecognizerRegistry(recognizers=recs, supported_languages=["en"])
    engine = AnalyzerEngine(registry=registry, nlp_engine=tokenizer_engine_class()(), supported_languages=["en"])

    def predict(text):
        results = engine.analyze(text=text, language="en", entities=COVERED, score_threshold=0.0)
        return [(x.entity_type, x.start, x.end, x.score) for x in results]

    return predict, "AnalyzerEngine, context words on (spaCy blank-English tokenizer, no model)"


# ---------------------------------------------------------------------------------------
# Scoring


def overlaps(a, b):
    return a[1] < b[2] and b[1] < a[2]


def score(rows, predictions, threshold):
    counts = {t: collections.Counter() for t in COVERED}
    errors = []
    for row, preds in zip(rows, predictions):
        kept = sorted({(t, s, e) for (t, s, e, sc) in preds if sc >= threshold and t in COVERED},
                      key=lambda p: (p[1], p[2], p[0]))
        for p in kept:
            if any(g[0] == p[0] and overlaps(p, g) for g in row["gold"]):
                counts[p[0]]["tp"] += 1
            else:
                counts[p[0]]["fp"] += 1
                errors.append(("FP", row, p))
        for g in row["gold"]:
            counts[g[0]]["gold"] += 1
            if not any(p[0] == g[0] and overlaps(p, g) for p in kept):
                counts[g[0]]["fn"] += 1
                errors.append(("FN", row, g))
    return counts, errors


def ratios(c):
    tp, fp, fn, gold = c["tp"], c["fp"], c["fn"], c["gold"]
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "gold": gold,
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round((gold - fn) / gold, 4) if gold else None,
    }


def report(counts, threshold):
    total = collections.Counter()
    for c in counts.values():
        total.update(c)
    return {
        "threshold": threshold,
        "per_entity": {t: ratios(counts[t]) for t in COVERED},
        "overall": ratios(total),
    }


def fmt(x):
    return "    -" if x is None else "%5.3f" % x


def print_table(rep, title):
    print("%s, threshold %s" % (title, rep["threshold"]))
    print("  %-20s %5s %5s %5s %5s %9s %7s" % ("entity", "gold", "tp", "fp", "fn", "precision", "recall"))
    lines = [(t, rep["per_entity"][t]) for t in COVERED] + [("overall (micro)", rep["overall"])]
    for name, r in lines:
        print("  %-20s %5d %5d %5d %5d %9s %7s" % (name, r["gold"], r["tp"], r["fp"], r["fn"],
                                                  fmt(r["precision"]), fmt(r["recall"])))
    print()


def show_errors(errors, limit):
    for kind, row, span in errors[:limit]:
        t, s, e = span
        print("  %s %-18s %-12s %r in %r" % (kind, t, row["id"], row["text"][s:e], row["text"]))
    if len(errors) > limit:
        print("  ... %d more" % (len(errors) - limit))
    print()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", nargs="+", help="JSON-lines files of labelled rows")
    ap.add_argument("--threshold", type=float, action="append",
                    help="score threshold (repeatable; default 0.0 and 0.5)")
    ap.add_argument("--json", action="store_true", help="one JSON object per threshold (and file)")
    ap.add_argument("--no-context", action="store_true", help="no context words (nlp_artifacts=None)")
    ap.add_argument("--per-file", action="store_true", help="score each file on its own too")
    ap.add_argument("--errors", type=int, default=0, metavar="N",
                    help="list up to N false positives and negatives per table")
    args = ap.parse_args(argv)
    thresholds = args.threshold if args.threshold else [0.0, 0.5]

    rows = load_rows(args.corpus)
    predict, mode = predictor(not args.no_context)
    predictions = [predict(r["text"]) for r in rows]

    import importlib.metadata

    try:
        version = importlib.metadata.version("presidio-analyzer")
    except importlib.metadata.PackageNotFoundError:
        version = "?"

    groups = [("all", rows, predictions)]
    if args.per_file and len(args.corpus) > 1:
        for path in args.corpus:
            idx = [i for i, r in enumerate(rows) if r["file"] == path]
            groups.append((path, [rows[i] for i in idx], [predictions[i] for i in idx]))

    if not args.json:
        print("Presidio %s pattern recognizers: %s" % (version, mode))
        print("%d rows from %s" % (len(rows), ", ".join(args.corpus)))
        print()
    for name, grows, gpreds in groups:
        for t in thresholds:
            counts, errors = score(grows, gpreds, t)
            rep = report(counts, t)
            if args.json:
                if len(groups) > 1:
                    rep = dict(rep, file=name)
                print(json.dumps(rep, sort_keys=False))
            else:
                title = ("all %d rows" % len(grows)) if name == "all" else "%s (%d rows)" % (name, len(grows))
                print_table(rep, title)
                if args.errors:
                    show_errors(errors, args.errors)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
