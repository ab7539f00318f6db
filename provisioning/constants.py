"""The seed's reference data, word for word. The lookup tables use these names as their
primary keys, so `customer.customer_type_id == BUSINESS_USER` needs no join."""

RESELLER_ORGANIZATION = "ResellerOrganization"
BUSINESS_ORGANIZATION = "BusinessOrganization"
BUSINESS_USER = "BusinessUser"
CONSUMER_USER = "ConsumerUser"

CUSTOMER_TYPES = {
    RESELLER_ORGANIZATION: "Customer is a reseller.",
    BUSINESS_ORGANIZATION: "Customer is a business organization",
    BUSINESS_USER: "Customer is a business user in a business organization.",
    CONSUMER_USER: "Customer is a consumer e-mail user.",
}

DELETED = "Deleted"
ENABLED = "Enabled"
DISABLED = "Disabled"

STATUS_TYPES = {
    DELETED: "Entity is deleted.",
    ENABLED: "Entity is enabled.",
    DISABLED: "Entity is disabled.",
}

PRIMARY_DOMAIN = "PrimaryDomain"
VANITY_DOMAIN = "VanityDomain"
SECONDARY_DOMAIN = "SecondaryDomain"

ASSET_TYPES = {
    PRIMARY_DOMAIN: "The primary domain name for an organization.",
    VANITY_DOMAIN: "A consumer vanity domain.",
    SECONDARY_DOMAIN: "A secondary domain assigned to an organization.",
}

PLAN_CHANGE = "PlanChange"
ASSET_ADDED = "AssetAdded"
PLAN_SIGNUP = "PlanSignup"
EXCH_SERVICE_ADDED = "ExchServiceAdded"
ADDRESS_LISTS_CREATED = "AddressListsCreated"
PUBLIC_FOLDER_CREATED = "PublicFolderCreated"
EVENT_DISABLED = "Disabled"
EVENT_DELETED = "Deleted"
CREATED = "Created"

EVENT_TYPES = {
    PLAN_CHANGE: "Customer has changed from one service plan to another.",
    ASSET_ADDED: "An asset for the customer was added to customer assets.",
    PLAN_SIGNUP: "Customer has signed up for the first service plan.",
    EXCH_SERVICE_ADDED: "Organization enabled for Exchange services.",
    ADDRESS_LISTS_CREATED: "Exchange address lists added to the organization.",
    PUBLIC_FOLDER_CREATED: "Exchange public folder added to the organization.",
    EVENT_DISABLED: "Customer was disabled.",
    EVENT_DELETED: "Customer was deleted.",
    CREATED: "Customer was created.",
}

# (name, native attribute, parent node, description) as the seed lists them.
FEATURE_TYPES = [
    ("MailboxSize", "size", "mail", "Size of an Exchange mailbox."),
    ("ActiveSync", "msExchOmaAdminWirelessEnable", "properties",
     "synchronize data between mobile device and Exchange Server 2007."),
    ("POP", "disablePOP", "mail", "POP3 mail access"),
    ("IMAP", "disableIMAP", "mail", "IMAP mail access"),
    ("MAPI", "disableMAPI", "mail", "MAPI mail access"),
    ("OWA", "disableHTTP", "mail", "HTTP mail access"),
    ("OwaSegment", "msExchMailboxFolderSet", "properties",
     "Outlook Web Access feature segmentation"),
    ("OutlookClient", "showInAddressLists", "options",
     "versions of outlook clients which determine the offline address book distribution "
     "method"),
]

# Which parent type each customer type may sit under (None: a root of the tree).
ALLOWED_PARENTS = {
    RESELLER_ORGANIZATION: {None, RESELLER_ORGANIZATION},
    BUSINESS_ORGANIZATION: {RESELLER_ORGANIZATION},
    BUSINESS_USER: {BUSINESS_ORGANIZATION},
    CONSUMER_USER: {RESELLER_ORGANIZATION},
}
