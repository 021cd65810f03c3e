"""Independent check of mxrelay's mime output with Python's email package.

Usage: python3 pycheck.py DIR
For every DIR/NAME.eml with DIR/NAME.json (the expected view written by
pycheck_test.go), parse the message with policy=default and print one line
"NAME: problem" per defect or difference. Prints nothing when all is well.
"""
import base64
import email
import email.errors
import email.policy
import json
import os
import re
import sys
from email.parser import BytesParser

OWN = {"from", "reply-to", "to", "cc", "subject", "date", "message-id",
       "mime-version", "content-type", "content-transfer-encoding",
       "list-unsubscribe", "list-unsubscribe-post"}

# CPython 3.11 keeps the whitespace between adjacent encoded-words inside a
# phrase (RFC 2047 section 6.2 says to drop it), so a display name that needed
# two encoded-words reads back with extra spaces. Tolerated, and only there.
ADJACENT_EW = re.compile(r"\?=\s+=\?")


def walk(part, view):
    mt = part.get_content_type()
    if part.is_multipart():
        return mt + "(" + ",".join(walk(p, view) for p in part.iter_parts()) + ")"
    disp = part.get_content_disposition()
    if disp is None and mt == "text/plain" and "text" not in view:
        view["text"] = part.get_content().replace("\r\n", "\n")
    elif disp is None and mt == "text/html" and "html" not in view:
        view["html"] = part.get_content().replace("\r\n", "\n")
    else:
        cid = part.get("content-id")
        a = {"content_type": mt}
        if disp == "inline":
            a["inline"] = True
        if part.get_filename():
            a["filename"] = part.get_filename()
        data = part.get_payload(decode=True)
        if data:
            a["data"] = base64.b64encode(data).decode()
        if cid:
            a["content_id"] = str(cid).strip("<>")
        view.setdefault("attachments", []).append(a)
    return mt


def addrs(msg, name):
    h = msg.get(name)
    if h is None:
        return None, ""
    raw = "".join(v for k, v in msg.raw_items() if k.lower() == name)
    out = []
    for a in h.addresses:
        d = {"address": a.addr_spec}
        if a.display_name:
            d["name"] = a.display_name
        out.append(d)
    return out, raw


def check(name, raw, want):
    problems = []
    if all(b < 128 for b in raw):
        msg = BytesParser(policy=email.policy.default).parsebytes(raw)
    else:  # RFC 6532 UTF-8 headers (SMTPUTF8 addresses)
        msg = email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
    for part in msg.walk():
        for d in part.defects:
            problems.append("defect in %s: %r" % (part.get_content_type(), d))
        for k, v in part.items():
            for d in getattr(v, "defects", ()):
                if want.get("smtputf8") and isinstance(d, email.errors.NonASCIILocalPartDefect):
                    continue  # RFC 6532 addresses: expected, the message needs SMTPUTF8
                problems.append("defect in header %s: %r" % (k, d))
    got = {"headers": sorted(k.lower() for k in msg.keys())}
    if msg["date"] is None or msg["date"].datetime is None:
        problems.append("no parsable Date")
    if not msg["message-id"]:
        problems.append("no Message-ID")
    if msg["subject"] is not None and str(msg["subject"]):
        got["subject"] = str(msg["subject"])
    raw_addr = {}
    for key, h in (("from", "from"), ("reply_to", "reply-to"), ("to", "to"), ("cc", "cc")):
        a, r = addrs(msg, h)
        if a:
            got[key] = a
            raw_addr[key] = r
    extra = {}
    for k, v in msg.items():
        if k.lower() not in OWN:
            extra.setdefault(k.lower(), []).append(str(v))
    if extra:
        got["extra"] = extra
    lu = msg.get("list-unsubscribe")
    if lu is not None:
        got["list_unsubscribe"] = str(lu).strip("<>")
        post = msg.get("list-unsubscribe-post")
        if post is not None and str(post) != "List-Unsubscribe=One-Click":
            problems.append("List-Unsubscribe-Post: %r" % str(post))
    got["structure"] = walk(msg, got)
    want.pop("smtputf8", None)
    for key in set(want) | set(got):
        w, g = want.get(key), got.get(key)
        if w == g:
            continue
        if key in raw_addr and w and g and len(w) == len(g) and ADJACENT_EW.search(raw_addr[key]):
            ok = all(x.get("address") == y.get("address") and
                     re.sub(r"\s", "", x.get("name", "")) == re.sub(r"\s", "", y.get("name", ""))
                     for x, y in zip(w, g))
            if ok:
                continue
        problems.append("%s: want %r, got %r" % (key, w, g))
    return problems


def main():
    d = sys.argv[1]
    for f in sorted(os.listdir(d)):
        if not f.endswith(".eml"):
            continue
        name = f[:-4]
        with open(os.path.join(d, f), "rb") as fh:
            raw = fh.read()
        with open(os.path.join(d, name + ".json"), encoding="utf-8") as fh:
            want = json.load(fh)
        try:
            problems = check(name, raw, want)
        except Exception as e:  # a crash in the parser is a failure too
            problems = ["exception: %r" % e]
        for p in problems:
            print("%s: %s" % (name, p))


if __name__ == "__main__":
    main()
