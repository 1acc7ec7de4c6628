"""A small UMS fleet licensed by a real ALD cycle, then looked at on 2026-12-20, when its licenses
are in every state: licensed, expiring, in the IGEL OS 12 grace period, and expired.

| device        | unit ID      | directory      | OS | site       | licenses on 2026-12-20                    |
|---------------|--------------|----------------|----|------------|-------------------------------------------|
| ITC-BER-OLD   | 00E0C5000001 | Berlin         | 11 | Berlin     | WE-SOONA (2026-12-06) expired             |
| ITC-BER-SALES | 00E0C5000002 | Berlin / Sales | 12 | Berlin     | WE-SOONA (2026-12-06) grace               |
| ITC-HAM       | 00E0C5000003 | Hamburg        | 12 | Hamburg HQ | WE-LONGA (2027-12-01) and EMP-HAMBA licensed |
| =cmd|calc     | 00E0C5000004 | Munich         | 11 | Munich     | WE-MIDDA (2026-12-25) expiring            |
| ITC-ROOT      | 00E0C5000005 | (root)         | 11 |            | none: no pack's condition matches it      |
"""

import datetime

from django.utils import timezone

from ald_portal import clock
from devices.engine import run_cycle
from tests import factories as f

LOOK_DAY = timezone.make_aware(datetime.datetime(2026, 12, 20, 12, 0))
FORMULA_NAME = "=cmd|calc"


def build(run=True):
    """The fleet; ``run=False`` stops before the ALD cycle and the move to 2026-12-20."""
    os11 = f.firmware("11.08.440.01")
    os12 = f.firmware("12.5.2", product="IGEL OS 12", fw_type="OS12")
    berlin = f.directory("Berlin")
    sales = f.directory("Sales", parent=berlin)
    hamburg = f.directory("Hamburg")
    munich = f.directory("Munich")
    f.ald_on()
    f.pack("WE-SOONA", total=5, expiry=datetime.date(2026, 12, 6))
    f.pack("WE-LONGA", total=5, expiry=datetime.date(2027, 12, 1))
    f.pack("WE-MIDDA", total=5, expiry=datetime.date(2026, 12, 25))
    f.pack("EMP-HAMBA", product_type="EMP", total=5, expiry=datetime.date(2027, 12, 3))
    f.register_all(
        conditions={"WE-SOONA": [berlin], "WE-LONGA": [hamburg], "WE-MIDDA": [munich], "EMP-HAMBA": [hamburg]}
    )
    devices = {
        "old": f.device(n=1, name="ITC-BER-OLD", fw=os11, directory=berlin, site="Berlin"),
        "sales": f.device(n=2, name="ITC-BER-SALES", fw=os12, directory=sales, site="Berlin"),
        "ham": f.device(n=3, name="ITC-HAM", fw=os12, directory=hamburg, site="Hamburg HQ"),
        "munich": f.device(n=4, name=FORMULA_NAME, fw=os11, directory=munich, site="Munich"),
        "root": f.device(n=5, name="ITC-ROOT", fw=os11),
    }
    built = {
        "devices": devices,
        "dirs": {"berlin": berlin, "sales": sales, "hamburg": hamburg, "munich": munich},
    }
    if not run:
        return built
    run_cycle()
    clock.freeze(LOOK_DAY)
    return built
