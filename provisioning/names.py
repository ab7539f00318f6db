"""Every name the panel accepts, and how the panel decides that two names are the same name.

One rule per kind of name — organization name, panel login, display name, personal name
(first and last names), logon name (the UPN's local part), domain, and the e-mail address
of a panel account — each with its length
limit, the characters it takes, and the help text that states it. The service functions
(provisioning.services, provisioning.accounts) are the authority: they clean every name with
these rules before storing it. Forms mirror them through `panel.forms.NameField`, so a person
sees the same message inline; an API calls `clean(kind, value)` or a rule's `clean()`.

What every rule does, in this order:

1. anything but text is refused; None counts as empty;
2. whitespace at either end (spaces, tabs, line breaks) is removed — inside, it is kept;
3. invisible and control characters are refused anywhere: controls (Cc, NUL included),
   format characters (Cf: bidi overrides, zero-width joiners and spaces, soft hyphens),
   surrogates (Cs), private use (Co), unassigned code points (Cn), line and paragraph
   separators (Zl, Zp) — they spoof lists and break the directory's or a script's parsing;
4. the name is stored in Unicode NFC (composed) form;
5. an empty name is refused ("… is required"), unless the kind is optional;
6. the length is counted in UTF-16 code units, as Active Directory counts it (a character
   outside the Basic Multilingual Plane, such as most emoji, counts twice);
7. then the kind's own characters.

Each rule returns the cleaned value or raises a ValidationError with a message naming the
kind and a `code`: required, max_length, forbidden_character, invalid_character,
invalid_start, mixed_script, invalid.

Organization names, domains and panel logins are then unique by `name_key`, computed here in
Python and stored beside the name, so the rule is the same on SQLite and on PostgreSQL
whatever lower() does in the database (SQLite folds ASCII only; PostgreSQL folds by the
cluster's ctype, and neither turns ß into ss)."""

import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import DomainNameValidator, EmailValidator
from django.utils.functional import lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy


def name_key(value):
    """The comparison key of a name: two names with one key are one name.

    NFKC, not NFC: Active Directory compares names with NORM_IGNORECASE | NORM_IGNOREWIDTH
    | NORM_IGNOREKANATYPE | NORM_IGNORENONSPACE ([MS-ADTS] 6.5.1), so for it ＣＯＮＴＯＳＯ is
    Contoso; NFC would keep full-width and other compatibility forms apart. NFKC also
    equates a few forms the directory may keep apart (ligatures, superscripts): refusing
    such a name costs a rename, while accepting one the directory calls equal would put two
    organizations in one OU. Casefold, not lower(): ß and SS fold alike. Normalizing again
    after casefold gives the Unicode compatibility caseless match (a fixed point).

    Diacritics are kept (Café and Cafe stay two names), although Windows' sort keys also
    ignore them and equate letters no Unicode normalization does (ø and o): those the
    directory itself refuses, since an OU another organization created is never adopted
    (see TenantMark in provisioning.directory)."""
    value = unicodedata.normalize("NFKC", value or "")
    return unicodedata.normalize("NFKC", value.casefold())


#: Unicode general categories refused in every name, with how a message calls them.
REFUSED_CATEGORIES = {
    "Cc": gettext_lazy("a control character"),
    "Cf": gettext_lazy("an invisible formatting character"),
    "Cs": gettext_lazy("a surrogate code point"),
    "Co": gettext_lazy("a private-use character"),
    "Cn": gettext_lazy("an unassigned character"),
    "Zl": gettext_lazy("a line separator"),
    "Zp": gettext_lazy("a paragraph separator"),
}

STRIPPED = gettext_lazy("Spaces and line breaks at either end are removed.")
INVISIBLE = gettext_lazy("no control or invisible characters")

#: Scripts an organization name may mix (UTS #39's "highly restrictive" level): one script,
#: or Latin with the scripts that Chinese, Japanese and Korean names are written in.
SCRIPT_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


def shown(ch):
    """A character as a message shows it: visible ASCII as is, anything else by code point
    and name, so that an invisible or look-alike character can be found."""
    code = f"U+{ord(ch):04X}"
    name = unicodedata.name(ch, "")
    if " " < ch < "\x7f":
        return f"'{ch}'"
    if unicodedata.category(ch) in REFUSED_CATEGORIES or ch.isspace():
        return f"{code} {name}".strip()
    return f"'{ch}' ({code} {name})".replace(" )", ")")


def utf16_length(value):
    return len(value.encode("utf-16-le")) // 2


def script_of(ch):
    """The script of a letter, from the Unicode name of its compatibility form (so that
    full-width and mathematical Latin letters are Latin): LATIN, CYRILLIC, GREEK, HAN…"""
    base = unicodedata.normalize("NFKC", ch)[:1] or ch
    name = unicodedata.name(base, "") or unicodedata.name(ch, "UNKNOWN")
    word = name.split(" ", 1)[0]
    return "HAN" if word in ("CJK", "IDEOGRAPHIC") else word


class NameRule:
    """One kind of name. Subclasses set the attributes and add `check()`."""

    kind = ""                # the key an API uses: "organization_name"
    label = ""               # how messages call it in English: "organization name"
    shown_label = ""         # the same, translated: gettext_lazy("organization name")
    max_length = 64
    required = True
    allowed = ""             # the characters it takes, as help texts and messages say
    note = ""                # what else the help text says

    def _help_text(self):
        optional = _("Optional. ") if not self.required else ""
        return _("%(optional)s%(note)sAt most %(max_length)s characters: %(allowed)s. "
                 "%(stripped)s") % {"optional": optional, "note": self.note,
                                     "max_length": self.max_length, "allowed": self.allowed,
                                     "stripped": STRIPPED}

    @property
    def help_text(self):
        """Lazy: a form made at import time shows it in each request's language."""
        return lazy(self._help_text, str)()

    def describe(self):
        """The rule as data, for an API's documentation or a client's own checks."""
        return {"kind": self.kind, "label": self.label, "max_length": self.max_length,
                "required": self.required, "help_text": str(self.help_text)}

    def error(self, message, code):
        return ValidationError(message, code=code)

    def clean(self, value):
        """The value as stored, or a ValidationError saying what is wrong with it."""
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise self.error(_("The %(label)s must be text.") % {"label": self.shown_label},
                             "invalid")
        value = value.strip()
        # Long enough that not even NFC composition (at most four code points into one)
        # could bring it within the limit: refuse it before looking at every character.
        if len(value) > 4 * self.max_length:
            raise self.too_long(len(value))
        for ch in value:
            what = REFUSED_CATEGORIES.get(unicodedata.category(ch))
            if what:
                raise self.error(_("The %(label)s cannot contain %(what)s (%(character)s).")
                                 % {"label": self.shown_label, "what": what,
                                    "character": shown(ch)}, "forbidden_character")
        value = unicodedata.normalize("NFC", value)
        if not value:
            if self.required:
                raise self.error(_("The %(label)s is required.") % {
                    "label": self.shown_label}, "required")
            return value
        if utf16_length(value) > self.max_length:
            raise self.too_long(utf16_length(value))
        return self.check(value)

    def too_long(self, length):
        return self.error(_("The %(label)s can be at most %(max_length)s characters long "
                            "(it has %(length)s).") % {"label": self.shown_label,
                                                       "max_length": self.max_length,
                                                       "length": length}, "max_length")

    def check(self, value):
        return value

    def refuse_character(self, ch):
        return self.error(_("The %(label)s cannot contain %(character)s: it may contain "
                            "%(allowed)s.") % {"label": self.shown_label,
                                               "character": shown(ch),
                                               "allowed": self.allowed}, "invalid_character")


class TextName(NameRule):
    """Free text a person reads: any letters, digits, punctuation, symbols and spaces.
    The directory client escapes what a DN needs escaped (escape_rdn), templates escape
    HTML, and CSV exports neutralise formulas, so none of those characters is refused."""

    allowed = gettext_lazy("any letters, digits, punctuation, symbols and spaces, no control "
                           "or invisible characters")


class DisplayName(TextName):
    """A user's display name: also its CN in the directory (at most 64 characters)."""

    kind, label = "display_name", "display name"
    shown_label = gettext_lazy("display name")


class PersonalName(TextName):
    """A first or last name (a user's givenName and sn, a panel account's names)."""

    kind, label = "personal_name", "name"
    shown_label = gettext_lazy("name")
    required = False


class TokenName(TextName):
    """An API token's name: what a person reads to tell their tokens apart."""

    kind, label = "token_name", "token name"
    shown_label = gettext_lazy("token name")
    max_length = 100
    note = gettext_lazy("Name it after the system that uses it. ")


class OrganizationName(NameRule):
    """An organization's name: its OU, its group's CN and sAMAccountName in the directory,
    and part of its Exchange address lists' names ("<name> - All Users", which Exchange
    limits to 64 characters and refuses a backslash in), hence 52 characters.

    Letters of one script (or Latin with Chinese, Japanese or Korean), combining marks,
    digits, spaces and the punctuation business names use: "Contoso, Ltd.", "AT&T",
    "O'Brien (Europe)", "Mærsk A/S", "1+1 Hosting", "Studio #2". `,` and `+` separate RDNs
    and `/` canonical names' parts, `(`, `)` and `'` mean something to LDAP filters and
    PowerShell: the directory client escapes them (escape_rdn, escape_filter_chars),
    Active Directory escapes '/' in canonical names, and PowerShell receives names as data
    only. The other DN specials (`" < > ; =`), the backslash (Exchange refuses it in an
    address list's name), the typographic quotes PowerShell reads as quotes (‘ ’ “ ”), `$`,
    the backtick, `*` and every other symbol are refused: no business name needs them, and
    each is one more way to break somebody's script or to make a look-alike (O’Brien and
    O'Brien). The name begins with a letter or a digit, so never with '#' or a space, which
    a DN would have to escape."""

    kind, label = "organization_name", "organization name"
    shown_label = gettext_lazy("organization name")
    max_length = 52
    PUNCTUATION = " &',.-()!+#@_/"
    allowed = gettext_lazy("letters of one script, digits, spaces and & ' , . - ( ) ! + # @ _ /, "
                           "beginning with a letter or a digit")
    note = gettext_lazy("Also its OU in the directory; it cannot be reused. ")

    def check(self, value):
        if not _is_letter_or_digit(value[0]):
            raise self.error(_("The %(label)s must begin with a letter or a digit.")
                             % {"label": self.shown_label}, "invalid_start")
        for ch in value:
            category = unicodedata.category(ch)
            if not (category[0] in "LM" or category == "Nd" or ch in self.PUNCTUATION):
                raise self.refuse_character(ch)
        scripts = sorted({script_of(ch) for ch in value
                          if unicodedata.category(ch) in ("Lu", "Ll", "Lt", "Lo")})
        if len(scripts) > 1 and not any(set(scripts) <= mix for mix in SCRIPT_MIXES):
            raise self.error(
                _("The %(label)s mixes scripts (%(scripts)s): write it in one script, so that "
                  "it cannot pass for another organization's name.")
                % {"label": self.shown_label,
                   "scripts": ", ".join(s.title() for s in scripts)}, "mixed_script")
        return value


class Login(NameRule):
    """A panel login (Django's username). Conservative ASCII: nothing in it can be markup, a
    DN, a bidi trick or a look-alike of another login. Case is kept; logins equal by case
    folding are one login (name_key)."""

    kind, label = "login", "login"
    shown_label = gettext_lazy("login")
    max_length = 150
    CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@+")
    allowed = gettext_lazy("letters a-z, digits and . _ - @ +, beginning with a letter or a "
                           "digit")

    def check(self, value):
        for ch in value:
            if ch not in self.CHARACTERS:
                raise self.refuse_character(ch)
        if not value[0].isalnum():
            raise self.error(_("The %(label)s must begin with a letter or a digit.")
                             % {"label": self.shown_label}, "invalid_start")
        return value


class UpnLocalPart(NameRule):
    """The part of a user's logon name (UPN) before the @; its sAMAccountName is made from
    it. An RFC 5322 dot-atom of a conservative ASCII set."""

    kind, label = "upn_local_part", "logon name"
    shown_label = gettext_lazy("logon name")
    CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+'")
    allowed = gettext_lazy("letters a-z, digits and . _ - + ' (no spaces), with a letter or a "
                           "digit, and no dot first, last or twice in a row")
    note = gettext_lazy("The part before the @, e.g. megan.bowen. ")

    def check(self, value):
        for ch in value:
            if ch not in self.CHARACTERS:
                raise self.refuse_character(ch)
        if value.startswith(".") or value.endswith(".") or ".." in value:
            raise self.error(_("The %(label)s cannot begin or end with a dot, or have two "
                               "dots in a row.") % {"label": self.shown_label}, "invalid")
        if not any(ch.isalnum() for ch in value):
            raise self.error(_("The %(label)s needs at least one letter or digit.")
                             % {"label": self.shown_label}, "invalid")
        return value


class DomainName(NameRule):
    """A domain: ASCII (an internationalized domain in its xn-- form), fully qualified,
    stored in lower case without the root's trailing dot."""

    kind, label = "domain", "domain"
    shown_label = gettext_lazy("domain")
    max_length = 253
    allowed = gettext_lazy("a fully qualified domain name in ASCII (an internationalized one in "
                           "its xn-- form); stored in lower case")
    note = gettext_lazy("e.g. fabrikam.com. ")
    validator = DomainNameValidator(accept_idna=False)

    def check(self, value):
        value = value.lower()
        if value.endswith("."):
            value = value[:-1]
        for ch in value:
            if not ch.isascii():
                raise self.error(_("The %(label)s must be written in ASCII: give an "
                                   "internationalized domain in its xn-- form.")
                                 % {"label": self.shown_label}, "invalid_character")
        valid = not value.endswith(".")  # only one root dot
        if valid:
            try:
                self.validator(value)
            except ValidationError:
                valid = False
        if not valid:
            raise self.error(_("Enter a valid domain name, such as contoso.com."), "invalid")
        if "." not in value:
            raise self.error(_("Enter a fully qualified domain name, such as contoso.com."),
                             "invalid")
        return value


class EmailAddress(NameRule):
    """An e-mail address for password resets (a panel account's, optional)."""

    kind, label = "email", "e-mail address"
    shown_label = gettext_lazy("e-mail address")
    max_length = 254
    required = False
    allowed = gettext_lazy("an e-mail address such as someone@contoso.com")
    validator = EmailValidator(message=gettext_lazy("Enter a valid e-mail address."))

    def check(self, value):
        try:
            self.validator(value)
        except ValidationError:
            raise self.error(_("Enter a valid e-mail address, such as someone@contoso.com."),
                             "invalid") from None
        return value


class MailboxAddress(NameRule):
    """An SMTP address of a mailbox, or an address mail is forwarded to: what Exchange
    receives in EmailAddresses and ForwardingSmtpAddress. The part before the @ takes the
    logon name's characters (letters a-z, digits and . _ - + '), the part after it is a
    domain as DOMAIN takes it; both are ASCII, so no look-alike or invisible character, no
    quote PowerShell reads (‘ ’ “ ”), no $, backtick, semicolon, parenthesis, space or line
    break can reach a script, even as data. Stored with the domain in lower case; two
    addresses with one name_key are one address.

    The one rule for an SMTP address: ExternalEmailAddress differs only in the letters it
    takes before the @ and in keeping the address as given."""

    kind, label = "mailbox_address", "e-mail address"
    shown_label = gettext_lazy("e-mail address")
    max_length = 254
    LOCAL_MAX_LENGTH = 64
    LOCAL_CHARACTERS = UpnLocalPart.CHARACTERS
    example = "megan.bowen@contoso.com"
    allowed = gettext_lazy("an address such as megan.bowen@contoso.com: before the @ letters "
                           "a-z, digits and . _ - + ', after it a domain")

    def check(self, value):
        local, domain = self.parts(value)
        return f"{local}@{domain}"

    def parts(self, value):
        """The checked local part and the domain (in lower case), or a ValidationError."""
        if value.count("@") != 1 or not value.split("@")[0]:
            raise self.error(_("Enter one e-mail address, such as %(example)s.")
                             % {"example": self.example}, "invalid")
        local, domain = value.split("@")
        if len(local) > self.LOCAL_MAX_LENGTH:
            raise self.error(_("The part of an %(label)s before the @ can be at most "
                               "%(max_length)s characters long.")
                             % {"label": self.shown_label, "max_length": self.LOCAL_MAX_LENGTH},
                             "max_length")
        for ch in local:
            if ch not in self.LOCAL_CHARACTERS:
                raise self.refuse_character(ch)
        if local.startswith(".") or local.endswith(".") or ".." in local:
            raise self.error(_("The %(label)s cannot begin or end with a dot before the @, or "
                               "have two dots in a row.") % {"label": self.shown_label},
                             "invalid")
        if not any(ch.isalnum() for ch in local):
            raise self.error(_("The %(label)s needs at least one letter or digit before the "
                               "@.") % {"label": self.shown_label}, "invalid")
        for ch in domain:
            if not ch.isascii():
                raise self.refuse_character(ch)
        try:
            domain = DOMAIN.check(domain)
        except ValidationError:
            raise self.error(_("The part after the @ must be a fully qualified domain, such "
                               "as %(domain)s.") % {"domain": self.example.split("@")[1]},
                             "invalid") from None
        return local, domain


# --- Mail contacts (issue #12) ----------------------------------------------------------


class ContactName(NameRule):
    """A mail contact's name: its Name in Exchange and its CN in the organization's OU, which
    Exchange limits to 64 characters. Letters and combining marks of any script (a contact
    is a person or a company anywhere), digits, spaces and the punctuation names use:
    "Chris Ashton", "O'Brien, Pat", "Müller & Söhne (Berlin)". Quotes other than the
    apostrophe (" ‘ ’ “ ”), `$`, the backtick, `;`, `<`, `>`, `=`, the backslash and every
    other symbol are refused: the name travels to Exchange as data only, but no name needs
    them and each is one more way to break somebody's script. It begins with a letter or a
    digit."""

    kind, label = "contact_name", "contact name"
    shown_label = gettext_lazy("contact name")
    max_length = 64
    PUNCTUATION = " &',.-()!+#@_/"
    allowed = gettext_lazy("letters, digits, spaces and & ' , . - ( ) ! + # @ _ /, beginning "
                           "with a letter or a digit")
    note = gettext_lazy("How the organization's address lists show the contact. ")

    def check(self, value):
        if not _is_letter_or_digit(value[0]):
            raise self.error(_("The %(label)s must begin with a letter or a digit.")
                             % {"label": self.shown_label}, "invalid_start")
        for ch in value:
            category = unicodedata.category(ch)
            if not (category[0] in "LM" or category == "Nd" or ch in self.PUNCTUATION):
                raise self.refuse_character(ch)
        return value


class ExternalEmailAddress(MailboxAddress):
    """A mail contact's external e-mail address (its ExternalEmailAddress in Exchange).

    MailboxAddress's rule, except that letters A-Z are taken before the @ too (somebody
    else's address is as they write it) and the address is stored as given; two addresses
    are one address whatever their case (name_key). Quoted local parts, `$`, the backtick
    and the other characters RFC 5322 allows but no real address needs are refused."""

    kind, label = "external_email", "external e-mail address"
    shown_label = gettext_lazy("external e-mail address")
    LOCAL_CHARACTERS = frozenset(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+'")
    example = "someone@fabrikam.com"
    allowed = gettext_lazy("an address such as someone@fabrikam.com: letters a-z, digits and "
                           ". _ - + ' before the @")
    note = gettext_lazy("Mail to the contact goes to this address. ")

    def check(self, value):
        local, domain = self.parts(value)
        if value.split("@")[1].lower() != domain:
            # The domain rule would have rewritten it (an internationalized name): the
            # contact's address is kept as given, so it must already be in its final form.
            raise self.error(_("The part after the @ must be a fully qualified domain, such "
                               "as %(domain)s.") % {"domain": "fabrikam.com"}, "invalid")
        return value


def _is_letter_or_digit(ch):
    return unicodedata.category(ch)[0] == "L" or unicodedata.category(ch) == "Nd"


ORGANIZATION_NAME = OrganizationName()
LOGIN = Login()
DISPLAY_NAME = DisplayName()
PERSONAL_NAME = PersonalName()
UPN_LOCAL_PART = UpnLocalPart()
DOMAIN = DomainName()
EMAIL = EmailAddress()
TOKEN_NAME = TokenName()
MAILBOX_ADDRESS = MailboxAddress()

CONTACT_NAME = ContactName()
EXTERNAL_EMAIL = ExternalEmailAddress()

RULES = {rule.kind: rule for rule in (ORGANIZATION_NAME, LOGIN, DISPLAY_NAME, PERSONAL_NAME,
                                      UPN_LOCAL_PART, DOMAIN, EMAIL, TOKEN_NAME,
                                      MAILBOX_ADDRESS, CONTACT_NAME, EXTERNAL_EMAIL)}

organization_name = ORGANIZATION_NAME.clean
login = LOGIN.clean
display_name = DISPLAY_NAME.clean
personal_name = PERSONAL_NAME.clean
upn_local_part = UPN_LOCAL_PART.clean
domain = DOMAIN.clean
email = EMAIL.clean
mailbox_address = MAILBOX_ADDRESS.clean


def clean(kind, value):
    """Clean `value` as a name of `kind` (a key of RULES): for an API's serializers."""
    return RULES[kind].clean(value)


def normalize_domain(value):
    """A domain as stored, for looking one up: stripped, lower case, no root dot. It does
    not validate (DOMAIN.clean does)."""
    value = (value or "").strip().lower()
    return value[:-1] if value.endswith(".") else value


def clean_field(errors, field, rule, value):
    """`rule.clean(value)` for a service that reports every field's mistake at once: on a
    ValidationError, record it in `errors` under `field` and return None."""
    try:
        return rule.clean(value)
    except ValidationError as exc:
        errors[field] = exc
        return None
