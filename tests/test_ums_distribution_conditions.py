"""View/Edit Distribution Conditions of a registered pack (docs/DOMAIN.md 2.4): the method (enabled,
with conditions, disabled) and the directories, each with its subdirectories. Saved through
devices.services.set_distribution, which checks the input and records an executed action; the ALD
engine then deploys by it."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from devices.engine import run_cycle
from devices.models import DeploymentEvent, DeviceLicense, DistributionMethod, RegisteredPack
from devices.services import set_distribution
from tests import factories as f

pytestmark = pytest.mark.django_db


def url(pack_id):
    return reverse("devices:pack_distribution", args=[pack_id])


@pytest.fixture
def setup(db):
    berlin = f.directory("Berlin")
    sales = f.directory("Sales", parent=berlin)
    hamburg = f.directory("Hamburg")
    f.pack("WE-ALLAA", total=10)
    f.pack("EMP-CONDA", product_type="EMP", total=10)
    f.register_all()
    f.ald_on()
    in_sales = f.device(n=1, name="ITC-SALES", directory=sales)
    in_hamburg = f.device(n=2, name="ITC-HAMBURG", directory=hamburg)
    return {
        "berlin": berlin,
        "sales": sales,
        "hamburg": hamburg,
        "in_sales": in_sales,
        "in_hamburg": in_hamburg,
    }


def emp_holders():
    return sorted(DeviceLicense.objects.filter(service="EMP").values_list("device__name", flat=True))


def state(pack_id="EMP-CONDA"):
    rp = RegisteredPack.objects.get(pack_id=pack_id)
    return rp.distribution_method, sorted(d.name for d in rp.condition_directories.all())


def test_the_editor_shows_the_method_and_every_directory_with_its_path(helpdesk_client, setup):
    response = helpdesk_client.get(url("EMP-CONDA"))
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial == {"distribution_method": "CONDITIONS", "directories": []}
    assert [label for _, label in form.fields["directories"].choices] == [
        "Berlin",
        "Berlin / Sales",
        "Hamburg",
    ]
    html = response.content.decode()
    assert "<legend>Automatic distribution method</legend>" in html
    assert '<fieldset class="plain" disabled>' in html  # read-only: every control disabled


def test_a_condition_on_a_directory_licenses_its_subdirectories_only(ums_admin_client, setup):
    run_cycle()
    assert emp_holders() == []  # EMP defaults to Enabled (with conditions), and there are none yet
    response = ums_admin_client.post(
        url("EMP-CONDA"), {"distribution_method": "CONDITIONS", "directories": [setup["berlin"].pk]}
    )
    assert response.status_code == 302 and response["Location"] == reverse("devices:deployment")
    assert state() == ("CONDITIONS", ["Berlin"])
    event = DeploymentEvent.objects.get(action=DeploymentEvent.Action.SETTINGS)
    assert (event.actor, event.pack_id, event.service, event.message) == (
        "ums-admin",
        "EMP-CONDA",
        "EMP",
        "Distribution of pack EMP-CONDA: Enabled (with conditions) -> Enabled (with conditions): Berlin",
    )
    run_cycle()
    assert emp_holders() == ["ITC-SALES"]


def test_enabled_then_disabled(ums_admin_client, setup):
    ums_admin_client.post(url("EMP-CONDA"), {"distribution_method": "DISABLED"})
    assert state() == ("DISABLED", [])
    run_cycle()
    assert emp_holders() == []
    ums_admin_client.post(url("EMP-CONDA"), {"distribution_method": "ENABLED"})
    assert state() == ("ENABLED", [])
    run_cycle()
    assert emp_holders() == ["ITC-HAMBURG", "ITC-SALES"]
    assert list(
        DeploymentEvent.objects.filter(action=DeploymentEvent.Action.SETTINGS)
        .order_by("pk")
        .values_list("message", flat=True)
    ) == [
        "Distribution of pack EMP-CONDA: Enabled (with conditions) -> Disabled",
        "Distribution of pack EMP-CONDA: Disabled -> Enabled",
    ]


def test_saving_the_same_conditions_is_no_change_and_no_action(ums_admin_client, setup):
    response = ums_admin_client.post(url("WE-ALLAA"), {"distribution_method": "ENABLED"}, follow=True)
    assert "No change." in response.content.decode()
    assert not DeploymentEvent.objects.filter(action=DeploymentEvent.Action.SETTINGS).exists()


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"distribution_method": "CONDITIONS"},
            "Enabled (with conditions) needs at least one directory; none was chosen.",
        ),
        (
            {"distribution_method": "SOMETIMES"},
            "Select a valid choice. SOMETIMES is not one of the available choices.",
        ),
        (
            {"distribution_method": "CONDITIONS", "directories": ["99999"]},
            "Select a valid choice. 99999 is not one of the available choices.",
        ),
        (
            {"distribution_method": "ENABLED", "directories": ["HAMBURG"]},
            "Select a valid choice. HAMBURG is not one of the available choices.",
        ),
    ],
)
def test_bad_input_is_an_error_naming_the_value_and_changes_nothing(ums_admin_client, setup, data, message):
    response = ums_admin_client.post(url("EMP-CONDA"), data)
    assert response.status_code == 200
    assert message in response.content.decode().replace("&#x27;", "'")
    assert state() == ("CONDITIONS", [])
    assert not DeploymentEvent.objects.filter(action=DeploymentEvent.Action.SETTINGS).exists()


@pytest.mark.parametrize(
    "args, field, message",
    [
        (("EMP-CONDA", "CONDITIONS", [99999]), "directories", "Directory 99999 does not exist."),
        (("EMP-CONDA", "CONDITIONS", ["x1"]), "directories", "Directory 'x1' is not a directory ID."),
        (
            ("EMP-CONDA", "WHENEVER", []),
            "distribution_method",
            "Distribution method 'WHENEVER' is not one of",
        ),
        (("NOPE-NOPEA", "ENABLED", []), "pack_id", "Pack 'NOPE-NOPEA' is not registered in this UMS."),
    ],
)
def test_the_service_refuses_bad_input_naming_field_and_value(setup, args, field, message):
    with pytest.raises(ValidationError) as exc:
        set_distribution(*args, actor="tester")
    assert list(exc.value.message_dict) == [field]
    assert exc.value.message_dict[field][0].startswith(message)
    assert state() == ("CONDITIONS", [])
    assert not DeploymentEvent.objects.filter(action=DeploymentEvent.Action.SETTINGS).exists()


def test_directories_with_enabled_or_disabled_are_refused(setup):
    with pytest.raises(ValidationError) as exc:
        set_distribution("EMP-CONDA", DistributionMethod.ENABLED, [setup["berlin"].pk], actor="tester")
    assert exc.value.message_dict == {
        "directories": ["Directories are conditions of Enabled (with conditions) only, not of Enabled."]
    }


def test_an_unknown_pack_is_not_found(helpdesk_client, setup):
    assert helpdesk_client.get(url("NOPE-NOPEA")).status_code == 404


def test_read_only_post_is_refused_and_changes_nothing(helpdesk_client, setup):
    response = helpdesk_client.post(url("EMP-CONDA"), {"distribution_method": "ENABLED"})
    assert response.status_code == 403
    assert b"needs the UMS administrator role" in response.content
    assert state() == ("CONDITIONS", [])
    assert DeploymentEvent.objects.filter(action=DeploymentEvent.Action.SETTINGS).count() == 0


def test_deployment_page_links_each_pack_to_its_conditions(helpdesk_client, ums_admin_client, setup):
    assert f'href="{url("EMP-CONDA")}" aria-label="Distribution conditions of EMP-CONDA">Conditions</a>' in (
        helpdesk_client.get(reverse("devices:deployment")).content.decode()
    )
    assert ">Edit conditions</a>" in ums_admin_client.get(reverse("devices:deployment")).content.decode()


def test_deployment_page_says_a_pack_with_conditions_but_no_directory_deploys_to_no_device(
    helpdesk_client, ums_admin_client, setup
):
    """EMP defaults to Enabled (with conditions) and has no directory yet: the Conditions cell says that
    it deploys nowhere, instead of a dash that reads like "no restriction"."""
    table = helpdesk_client.get(reverse("devices:deployment")).context["packs"]
    cells = {row.record.pack_id: row.get_cell("conditions") for row in table.rows}
    assert cells == {"WE-ALLAA": "—", "EMP-CONDA": "no directory: deploys to no device"}
    set_distribution("EMP-CONDA", DistributionMethod.CONDITIONS, [setup["berlin"].pk], actor="admin")
    table = helpdesk_client.get(reverse("devices:deployment")).context["packs"]
    assert {row.record.pack_id: row.get_cell("conditions") for row in table.rows}["EMP-CONDA"] == "Berlin"
