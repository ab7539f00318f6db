"""The seed's reference data is loaded word for word by the data migrations."""

from provisioning.models import AssetType, CustomerType, EventType, StatusType
from servicplans.models import FeatureType


def test_customer_status_asset_and_event_types_are_the_seeds(db):
    assert set(CustomerType.objects.values_list("name", flat=True)) == {
        "ResellerOrganization", "BusinessOrganization", "BusinessUser", "ConsumerUser"}
    assert set(StatusType.objects.values_list("name", flat=True)) == {
        "Deleted", "Enabled", "Disabled"}
    assert set(AssetType.objects.values_list("name", flat=True)) == {
        "PrimaryDomain", "VanityDomain", "SecondaryDomain"}
    assert set(EventType.objects.values_list("name", flat=True)) == {
        "PlanChange", "AssetAdded", "PlanSignup", "ExchServiceAdded", "AddressListsCreated",
        "PublicFolderCreated", "Disabled", "Deleted", "Created"}
    assert EventType.objects.get(name="PlanChange").description == (
        "Customer has changed from one service plan to another.")
    assert CustomerType.objects.get(name="BusinessUser").description == (
        "Customer is a business user in a business organization.")


def test_the_eight_feature_types_are_exactly_the_seeds(db):
    rows = set(FeatureType.objects.values_list("name", "native_attribute", "parent_node"))
    assert rows == {
        ("MailboxSize", "size", "mail"),
        ("ActiveSync", "msExchOmaAdminWirelessEnable", "properties"),
        ("POP", "disablePOP", "mail"),
        ("IMAP", "disableIMAP", "mail"),
        ("MAPI", "disableMAPI", "mail"),
        ("OWA", "disableHTTP", "mail"),
        ("OwaSegment", "msExchMailboxFolderSet", "properties"),
        ("OutlookClient", "showInAddressLists", "options"),
    }
