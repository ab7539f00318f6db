"""What the API shows and what it reads. Input serializers only parse (types, required
fields); the rules are the services' (provisioning.services, provisioning.accounts,
provisioning.tokens), whose errors come back by field under the same names."""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from provisioning import constants as c
from provisioning import names
from provisioning.models import (
    Account,
    ApiToken,
    Customer,
    CustomerAsset,
    Event,
    MailContact,
    Operation,
)
from provisioning.models.accounts import PEER_ROLES, Role
from servicplans.models import HostingPlan, ServicePlan

MAX_ID = 2**63 - 1


class NameField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # The rule refuses NUL, surrogates and the rest, with its words. Cleared here, not
        # on the instance Name() returns: a serializer deep-copies its declared fields, and
        # a copy is made by calling __init__ again with the same arguments.
        self.validators = []


def Name(rule, **kwargs):  # noqa: N802 - a field, named like one
    """A name the services clean by `rule` (provisioning.names): taken as sent — no trimming,
    length or blank check of REST framework's own — so that the browser and the API give
    the same answer and the same message for every name."""
    kwargs.setdefault("help_text", rule.help_text)
    return NameField(trim_whitespace=False, allow_blank=True, **kwargs)


def Id(**kwargs):  # noqa: N802 - a field, named like one
    """An object's id in a body."""
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


@extend_schema_field(OpenApiTypes.URI)
class Link(serializers.Field):
    """The absolute URL of the object in the API."""

    def __init__(self, view_name, **kwargs):
        self.view_name = view_name
        kwargs.update(source="*", read_only=True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        url = reverse(self.view_name, args=[value.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class Ref(serializers.Serializer):
    """Another object, by id and name."""

    id = serializers.IntegerField()
    name = serializers.CharField()


class CustomerRef(Ref):
    type = serializers.CharField(source="customer_type_id")
    upn = serializers.CharField()


class NullableRef(Ref):
    def __init__(self, **kwargs):
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)


# --- Operations -----------------------------------------------------------------------


class OperationSerializer(serializers.ModelSerializer):
    url = Link("api:operation-detail")
    customer = CustomerRef(read_only=True)
    organization = serializers.IntegerField(source="scope_id", read_only=True)
    retry_needs_password = serializers.BooleanField(source="needs_secret", read_only=True)
    steps = serializers.ListField(child=serializers.DictField(), read_only=True)
    params = serializers.DictField(read_only=True)

    class Meta:
        model = Operation
        fields = ("id", "url", "action", "state", "customer", "organization", "params",
                  "steps", "attempts", "last_error", "retry_needs_password", "created",
                  "started", "finished", "updated")
        read_only_fields = fields


class RetrySerializer(serializers.Serializer):
    secret = serializers.CharField(required=False, allow_blank=True, write_only=True,
                                     trim_whitespace=False, style={"input_type": "password"},
                                     help_text="A new password, for an operation that "
                                               "sets one (retry_needs_password).")


# --- Organizations --------------------------------------------------------------------


class OrganizationSerializer(serializers.ModelSerializer):
    url = Link("api:organization-detail")
    status = serializers.CharField(source="status_id", read_only=True)
    reseller = Ref(source="parent", read_only=True)
    primary_domain = serializers.CharField(read_only=True, allow_null=True)
    user_count = serializers.IntegerField(read_only=True)
    hosting_plan = serializers.SerializerMethodField()
    available_service_plans = Ref(many=True, read_only=True)
    provisioned = serializers.SerializerMethodField(
        help_text="Whether the directory object exists (its GUID is recorded).")

    class Meta:
        model = Customer
        fields = ("id", "url", "name", "status", "reseller", "primary_domain", "user_count",
                  "hosting_plan", "available_service_plans", "provisioned", "created",
                  "updated")
        read_only_fields = fields

    def get_hosting_plan(self, obj) -> Ref(allow_null=True):
        if getattr(obj, "hosting_plan_id", None) is None:
            return None
        return {"id": obj.hosting_plan_id, "name": obj.hosting_plan_name}

    def get_provisioned(self, obj) -> bool:
        return obj.object_guid is not None


class SignUpSerializer(serializers.Serializer):
    reseller = Id(
        required=False, help_text="The reseller that sells it; a reseller's own login may "
                                  "leave it out.")
    name = Name(names.ORGANIZATION_NAME)
    primary_domain = Name(names.DOMAIN)
    admin_username = Name(names.LOGIN)
    admin_password = serializers.CharField(trim_whitespace=False, write_only=True,
                                           style={"input_type": "password"})
    admin_email = Name(names.EMAIL, required=False, default="")
    hosting_plan = serializers.PrimaryKeyRelatedField(queryset=HostingPlan.objects.all())
    service_plans = serializers.PrimaryKeyRelatedField(
        queryset=ServicePlan.objects.all(), many=True, required=False, default=list,
        help_text="The service plans the organization may give its users.")


class HostingPlanChangeSerializer(serializers.Serializer):
    hosting_plan = serializers.PrimaryKeyRelatedField(queryset=HostingPlan.objects.all())


# --- Users ----------------------------------------------------------------------------


class UserSerializer(serializers.ModelSerializer):
    url = Link("api:user-detail")
    organization = serializers.IntegerField(source="parent_id", read_only=True)
    display_name = serializers.CharField(source="name", read_only=True)
    status = serializers.CharField(source="status_id", read_only=True)
    service_plan = NullableRef()
    provisioned = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = ("id", "url", "organization", "display_name", "upn", "status",
                  "service_plan", "provisioned", "created", "updated")
        read_only_fields = fields

    def get_provisioned(self, obj) -> bool:
        return obj.object_guid is not None


class UserCreateSerializer(serializers.Serializer):
    organization = Id()
    display_name = Name(names.DISPLAY_NAME)
    given_name = Name(names.PERSONAL_NAME, required=False, default="")
    surname = Name(names.PERSONAL_NAME, required=False, default="")
    local_part = Name(names.UPN_LOCAL_PART)
    domain = Name(names.DOMAIN)
    password = serializers.CharField(trim_whitespace=False, write_only=True,
                                     style={"input_type": "password"})
    service_plan = serializers.PrimaryKeyRelatedField(
        queryset=ServicePlan.objects.all(), required=False, allow_null=True, default=None,
        help_text="One of the organization's available service plans; none: no mailbox.")


class UserUpdateSerializer(serializers.Serializer):
    display_name = Name(names.DISPLAY_NAME, required=False)
    given_name = Name(names.PERSONAL_NAME, required=False)
    surname = Name(names.PERSONAL_NAME, required=False)


class PasswordSerializer(serializers.Serializer):
    password = serializers.CharField(trim_whitespace=False, write_only=True,
                                     style={"input_type": "password"})


class ServicePlanChangeSerializer(serializers.Serializer):
    service_plan = serializers.PrimaryKeyRelatedField(
        queryset=ServicePlan.objects.all(), allow_null=True,
        help_text="One of the organization's available service plans; null: no mailbox.")


# --- A user's mail flow: its addresses and its forwarding ------------------------------


class MailAddressesSerializer(serializers.Serializer):
    primary = serializers.CharField(read_only=True, help_text="The address the mailbox "
                                    "sends from: its logon name or one of `addresses`.")
    addresses = serializers.ListField(child=serializers.CharField(), read_only=True,
                                      help_text="The additional SMTP addresses (the logon "
                                                "name is always one of the mailbox's).")


class MailAddressesUpdateSerializer(serializers.Serializer):
    addresses = serializers.ListField(
        child=Name(names.MAILBOX_ADDRESS), allow_empty=True,
        help_text="Exactly these additional addresses, on the organization's own domains "
                  "(an empty list removes them all).")
    primary = Name(names.MAILBOX_ADDRESS, required=False, allow_null=True, default=None)


class ForwardingSerializer(serializers.Serializer):
    forward_to = serializers.CharField(read_only=True, allow_null=True,
                                       help_text="Where mail is forwarded; null: it is not.")
    recipient = serializers.IntegerField(
        read_only=True, allow_null=True,
        help_text="The user of the organization it goes to; null for an external address.")
    keep_copy = serializers.BooleanField(read_only=True)


class ForwardingUpdateSerializer(serializers.Serializer):
    forward_to = Name(names.MAILBOX_ADDRESS, required=False, allow_null=True, default="",
                      help_text="The address of another user of this organization, or an "
                                "external address; empty or null: stop forwarding.")
    keep_copy = serializers.BooleanField(required=False, default=False)


# --- Mail contacts --------------------------------------------------------------------


class ContactSerializer(serializers.ModelSerializer):
    url = Link("api:contact-detail")
    organization = serializers.IntegerField(source="organization_id", read_only=True)
    provisioned = serializers.SerializerMethodField(
        help_text="Whether the Exchange mail contact exists (its GUID is recorded).")

    class Meta:
        model = MailContact
        fields = ("id", "url", "organization", "name", "email", "status", "provisioned",
                  "created", "updated")
        read_only_fields = fields

    def get_provisioned(self, obj) -> bool:
        return obj.exchange_guid is not None


class ContactCreateSerializer(serializers.Serializer):
    organization = Id()
    name = Name(names.CONTACT_NAME)
    email = Name(names.EXTERNAL_EMAIL)


# --- Domains --------------------------------------------------------------------------


class DomainSerializer(serializers.ModelSerializer):
    organization = serializers.IntegerField(source="customer_id", read_only=True)
    asset_type = serializers.CharField(source="asset_type_id", read_only=True)
    status = serializers.CharField(source="status_id", read_only=True)

    class Meta:
        model = CustomerAsset
        fields = ("id", "organization", "name", "asset_type", "status", "created")
        read_only_fields = fields


class DomainCreateSerializer(serializers.Serializer):
    organization = Id()
    name = serializers.CharField(max_length=253)
    asset_type = serializers.ChoiceField(choices=[c.SECONDARY_DOMAIN, c.VANITY_DOMAIN],
                                         default=c.SECONDARY_DOMAIN)


# --- Events: the billing feed ----------------------------------------------------------


class EventSerializer(serializers.ModelSerializer):
    cursor = serializers.IntegerField(source="feed_entry.sequence", read_only=True,
                                      help_text="The event's place in the feed: pass it as "
                                                "?after= to continue after it.")
    event_type = serializers.CharField(source="event_type_id", read_only=True)
    customer = CustomerRef(read_only=True)
    actor = serializers.CharField(source="actor.username", read_only=True, allow_null=True,
                                  default=None)
    data = serializers.DictField(read_only=True)

    class Meta:
        model = Event
        fields = ("cursor", "id", "occurred_at", "event_type", "customer", "actor", "data")
        read_only_fields = fields


class EventPageSerializer(serializers.Serializer):
    results = EventSerializer(many=True)
    next_cursor = serializers.IntegerField(help_text="Pass as ?after= in the next poll.")
    more = serializers.BooleanField(help_text="Whether more events are waiting right now.")
    next = serializers.URLField(help_text="The next poll's URL.")


# --- Catalog and usage ----------------------------------------------------------------


class QuotaLimitSerializer(serializers.Serializer):
    quota = serializers.CharField()
    limit = serializers.IntegerField(allow_null=True, help_text="null: unlimited")


class HostingPlanSerializer(serializers.ModelSerializer):
    quotas = serializers.SerializerMethodField()

    class Meta:
        model = HostingPlan
        fields = ("id", "name", "description", "setup_price", "recurring_price",
                  "billing_period", "quotas")
        read_only_fields = fields

    def get_quotas(self, plan) -> QuotaLimitSerializer(many=True):
        return [{"quota": q.quota, "limit": None if q.unlimited else q.limit}
                for q in plan.quotas.all()]


class ServicePlanSerializer(serializers.ModelSerializer):
    category = serializers.CharField(source="category.name", read_only=True, allow_null=True,
                                     default=None)
    features = serializers.SerializerMethodField()

    class Meta:
        model = ServicePlan
        fields = ("id", "name", "category", "description", "is_active", "features")
        read_only_fields = fields

    def get_features(self, plan) -> dict[str, str]:
        return {f.feature_type.name: f.value for f in plan.features.all()}


class QuotaUsageSerializer(serializers.Serializer):
    quota = serializers.CharField()
    label = serializers.CharField()
    used = serializers.IntegerField()
    limit = serializers.IntegerField(allow_null=True, help_text="null: unlimited")


class HostingSpaceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    customer = CustomerRef()
    hosting_plan = Ref()
    status = serializers.CharField(source="status_id")
    usage = QuotaUsageSerializer(many=True)


# --- Panel accounts (peers) -------------------------------------------------------------


class PeerSerializer(serializers.ModelSerializer):
    url = Link("api:peer-detail")
    organization = serializers.IntegerField(source="customer_id", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.CharField(source="user.email", read_only=True)
    first_name = serializers.CharField(source="user.first_name", read_only=True)
    last_name = serializers.CharField(source="user.last_name", read_only=True)

    class Meta:
        model = Account
        fields = ("id", "url", "organization", "username", "email", "first_name",
                  "last_name", "role", "created")
        read_only_fields = fields


PEER_ROLE_CHOICES = [r.value for r in Role if r in PEER_ROLES]


class PeerCreateSerializer(serializers.Serializer):
    organization = Id()
    username = Name(names.LOGIN)
    password = serializers.CharField(trim_whitespace=False, write_only=True,
                                     style={"input_type": "password"})
    role = serializers.ChoiceField(choices=PEER_ROLE_CHOICES)
    email = Name(names.EMAIL, required=False, default="")
    first_name = Name(names.PERSONAL_NAME, required=False, default="")
    last_name = Name(names.PERSONAL_NAME, required=False, default="")


class PeerUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=[*PEER_ROLE_CHOICES, Role.PRIMARY_ADMIN.value],
                                   required=False)
    email = Name(names.EMAIL, required=False)
    first_name = Name(names.PERSONAL_NAME, required=False)
    last_name = Name(names.PERSONAL_NAME, required=False)


# --- The change log -----------------------------------------------------------------------


class ChangeSerializer(serializers.Serializer):
    ACTIONS = {0: "create", 1: "update", 2: "delete", 3: "access"}

    id = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
    action = serializers.SerializerMethodField()
    object_type = serializers.CharField(source="content_type.model")
    object_id = serializers.IntegerField(allow_null=True)
    object_repr = serializers.CharField()
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)
    changes = serializers.SerializerMethodField(
        help_text="{field: [before, after]}")

    def get_action(self, entry) -> str:
        return self.ACTIONS.get(entry.action, str(entry.action))

    def get_changes(self, entry) -> dict[str, list[str | None]]:
        return entry.changes_dict


# --- Tokens and the caller ------------------------------------------------------------


class TokenSerializer(serializers.ModelSerializer):
    url = Link("api:token-detail")
    prefix = serializers.CharField(source="display_prefix", read_only=True)
    user = serializers.CharField(source="user.username", read_only=True)
    state = serializers.ChoiceField(choices=["active", "expired", "revoked"], read_only=True)

    class Meta:
        model = ApiToken
        fields = ("id", "url", "name", "prefix", "user", "state", "created", "expires",
                  "last_used", "revoked")
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer):
    name = Name(names.TOKEN_NAME)
    expires = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                        help_text="Empty: the token does not expire.")


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The token itself, shown only "
                                                            "in this answer.")

    class Meta(TokenSerializer.Meta):
        fields = (*TokenSerializer.Meta.fields, "token")
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.CharField()
    customer = CustomerRef(allow_null=True)
    permissions = serializers.ListField(child=serializers.CharField())
    token = TokenSerializer(allow_null=True)
