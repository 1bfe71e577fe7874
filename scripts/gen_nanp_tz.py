#!/usr/bin/env python3
"""Generate fixtures/nanp_tz.tsv (NANP prefix -> country, state, zones) from libphonenumber.

compliance.md §6.1 specifies the steps; this script follows them one for one. The data comes
from the PyPI package `phonenumbers` pinned to PHONENUMBERS_VERSION (Apache-2.0, the Python
port of Google libphonenumber), read in a throwaway virtual environment so that neither the
host's Python nor CI needs the package: the output is committed and the server embeds it.

Usage, from the repository root (either form gives the same file):

    python3 scripts/gen_nanp_tz.py

        Without the pinned phonenumbers importable, the script makes a throwaway virtualenv in
        a temporary directory, installs phonenumbers==9.0.43 there, re-runs itself with that
        interpreter and deletes the directory afterwards.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install phonenumbers==9.0.43 \
        && /tmp/venv/bin/python scripts/gen_nanp_tz.py

Inputs: the package's tzdata and geodata, and the hand-kept fixtures/nanp_tz_overlay.tsv.
Output: fixtures/nanp_tz.tsv, comment lines starting with `#`, then one tab-separated row per
prefix, sorted by prefix:

    prefix   3-6 digits of the national number (area code, or area code + exchange digits)
    country  region of the area code (US, PR, CA, JM, ...)
    state    USPS code for US rows; PR, VI, GU, AS, MP for those territories; `-` elsewhere
    zones    IANA zone names, comma-separated, sorted
    source   `libphonenumber`  the row as libphonenumber has it
             `union`           an area-code row widened by (or created from) its longer rows
             `overlay:NPA`     an area-code row given the zones of the area code NPA it
                               overlays (fixtures/nanp_tz_overlay.tsv)

The script stops (exit status 1, a message naming the prefix) instead of guessing: a region
that is None, a US name it cannot turn into one USPS code, an overlay row naming an unknown
area code or a partner in another state.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PHONENUMBERS_VERSION = "9.0.43"
ROOT = Path(__file__).resolve().parent.parent
OVERLAY = ROOT / "fixtures" / "nanp_tz_overlay.tsv"
OUTPUT = ROOT / "fixtures" / "nanp_tz.tsv"
# Set in the child run, so a venv whose install went wrong cannot recurse forever.
IN_VENV = "GEN_NANP_TZ_IN_VENV"

# Territories with their own region in libphonenumber but texted as US (R8): state = region.
TERRITORIES = {"PR", "VI", "GU", "AS", "MP"}

# English names in geodata -> USPS codes. "Washington" alone is absent on purpose: geodata
# says "Washington State" and "Washington D.C.", and a bare one would be ambiguous.
STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
    "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK",
    "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC",
    "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington State": "WA", "Washington D.C.": "DC",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
}
USPS = set(STATES.values())
CITY_STATE = re.compile(r"^.+, ([A-Z]{2})$")


def fail(message):
    sys.exit(f"gen_nanp_tz: {message}")


def bootstrap():
    """Re-run this script inside a throwaway venv holding the pinned phonenumbers."""
    if os.environ.get(IN_VENV):
        fail(f"phonenumbers=={PHONENUMBERS_VERSION} is not importable even inside the venv")
    tmp = tempfile.mkdtemp(prefix="gen_nanp_tz-")
    try:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"phonenumbers=={PHONENUMBERS_VERSION}"],
            check=True,
        )
        env = dict(os.environ, **{IN_VENV: "1"})
        return subprocess.run([str(python), str(Path(__file__).resolve())], env=env).returncode
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def usps(name):
    """A geodata English name as a USPS code, or None when it is neither form of §6.1 step 3."""
    if name in STATES:
        return STATES[name]
    m = CITY_STATE.match(name)
    return m.group(1) if m and m.group(1) in USPS else None


def us_state(npa, geocode):
    """Step 3 for a US area code: its own name, else the one state its longer entries share."""
    own = geocode.get("1" + npa, {}).get("en")
    if own is not None:
        code = usps(own)
        if code is None:
            fail(f"area code {npa}: no USPS code for its geodata name {own!r}")
        return code
    # No name for the area code itself (203, 310, 713, 718): its exchanges name places, all
    # in one state. Their full-state entries ("California") count as that state too.
    found = {}
    for key, names in geocode.items():
        if len(key) > 4 and key.startswith("1" + npa) and "en" in names:
            code = usps(names["en"])
            if code is None:
                fail(f"area code {npa}: no USPS code for {names['en']!r} (geodata key {key})")
            found.setdefault(code, key)
    if len(found) != 1:
        fail(f"area code {npa}: no name of its own and its longer entries give {sorted(found) or 'nothing'}")
    return next(iter(found))


def read_overlay():
    """fixtures/nanp_tz_overlay.tsv as {npa: partner}; `#` lines are comments."""
    rows = {}
    for number, line in enumerate(OVERLAY.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not all(re.fullmatch(r"\d{3}", f) for f in fields[:2]):
            fail(f"{OVERLAY.name}:{number}: want `npa<TAB>partner<TAB>reason`, got {line!r}")
        npa, partner, _reason = fields
        if npa in rows:
            fail(f"{OVERLAY.name}:{number}: {npa} listed twice")
        rows[npa] = partner
    return rows


def generate():
    import phonenumbers
    from phonenumbers import geodata, tzdata

    if phonenumbers.__version__ != PHONENUMBERS_VERSION:
        fail(f"phonenumbers {phonenumbers.__version__} found, {PHONENUMBERS_VERSION} pinned")
    geocode = geodata.GEOCODE_DATA

    # Step 1: NANP keys minus the leading 1; the key "1" itself lists every NANP zone.
    zones = {}
    for key, names in tzdata.TIMEZONE_DATA.items():
        if key.startswith("1") and len(key) > 1 and "Etc/Unknown" not in names:
            zones[key[1:]] = set(names)
    source = {prefix: "libphonenumber" for prefix in zones}

    # Step 4: an area-code row is the union of its own and all its longer rows' zones, so an
    # exchange without a row of its own gets every zone its area code spans.
    for prefix in sorted(p for p in zones if len(p) > 3):
        npa = prefix[:3]
        merged = zones.get(npa, set()) | zones[prefix]
        if merged != zones.get(npa):
            zones[npa] = merged
            source[npa] = "union"

    # Steps 2 and 3, per area code (longer rows share their area code's country and state).
    country, state = {}, {}
    for npa in sorted({p[:3] for p in zones}):
        region = phonenumbers.region_code_for_number(phonenumbers.parse(f"+1{npa}2000000"))
        if region is None:
            fail(f"area code {npa}: region_code_for_number gives None")
        country[npa] = region
        if region == "US":
            state[npa] = us_state(npa, geocode)
        else:
            state[npa] = region if region in TERRITORIES else "-"

    # Step 5: libphonenumber maps some overlays of split area codes to one zone; the overlay
    # shares its partner's territory, so it gets the partner's zones too.
    for npa, partner in read_overlay().items():
        for code in (npa, partner):
            if code not in zones:
                fail(f"{OVERLAY.name}: area code {code} has no row in the data")
        if (country[npa], state[npa]) != (country[partner], state[partner]):
            fail(f"{OVERLAY.name}: {npa} ({state[npa]}) and {partner} ({state[partner]}) differ in state")
        zones[npa] = zones[npa] | zones[partner]
        source[npa] = f"overlay:{partner}"

    # Step 6: sort and write.
    lines = [
        "# Copyright (C) 2011-2026 The Libphonenumber Authors. Licensed under the Apache License, Version 2.0",
        "# (LICENSES/Apache-2.0.txt). Derived from the timezone and geocoding data of libphonenumber.",
        f"# Source: PyPI phonenumbers {PHONENUMBERS_VERSION} and fixtures/nanp_tz_overlay.tsv,",
        "# by scripts/gen_nanp_tz.py (compliance.md §6.1): generated, do not edit.",
        "# prefix\tcountry\tstate\tzones\tsource",
    ]
    for prefix in sorted(zones):
        npa = prefix[:3]
        lines.append("\t".join(
            [prefix, country[npa], state[npa], ",".join(sorted(zones[prefix])), source[prefix]]
        ))
    OUTPUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"gen_nanp_tz: wrote {len(zones)} rows to {OUTPUT.relative_to(ROOT)}")
    return 0


def main():
    try:
        import phonenumbers
    except ImportError:
        return bootstrap()
    if phonenumbers.__version__ != PHONENUMBERS_VERSION and not os.environ.get(IN_VENV):
        return bootstrap()
    return generate()


if __name__ == "__main__":
    sys.exit(main())
