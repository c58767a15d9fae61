//! Which column means what. Headers are compared normalised (lower case, letters and digits
//! only), so HubSpot's labels ("First Name") and internal names ("firstname") and
//! Salesforce's labels ("Account ID") and API names ("AccountId") land on the same key.

/// What a row creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Companies,
    Contacts,
    Deals,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Companies => "companies",
            Kind::Contacts => "contacts",
            Kind::Deals => "deals",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "companies" | "company" | "accounts" | "account" => Some(Kind::Companies),
            "contacts" | "contact" | "people" => Some(Kind::Contacts),
            "deals" | "deal" | "opportunities" | "opportunity" => Some(Kind::Deals),
            _ => None,
        }
    }

    /// The fields a column can be mapped to, with labels for the wizard.
    pub fn targets(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Companies => &[
                ("externalId", "ID in the old system"),
                ("companyName", "Company name"),
                ("domain", "Website / domain"),
                ("industry", "Industry"),
                ("phone", "Phone"),
                ("street", "Street"),
                ("city", "City"),
                ("region", "State / region"),
                ("postalCode", "Postal code"),
                ("country", "Country"),
                ("status", "Status"),
                ("source", "Source"),
                ("owner", "Owner e-mail"),
                ("notes", "Notes"),
            ],
            Kind::Contacts => &[
                ("externalId", "ID in the old system"),
                ("firstName", "First name"),
                ("lastName", "Last name"),
                ("email", "E-mail"),
                ("phone", "Phone"),
                ("mobile", "Mobile"),
                ("companyName", "Company name"),
                ("companyExternalId", "Company ID in the old system"),
                ("city", "City"),
                ("country", "Country"),
                ("status", "Status / lifecycle stage"),
                ("source", "Source"),
                ("owner", "Owner e-mail"),
                ("emailOptOut", "Opted out of e-mail"),
                ("doNotCall", "Do not call"),
                ("notes", "Notes"),
            ],
            Kind::Deals => &[
                ("externalId", "ID in the old system"),
                ("name", "Deal name"),
                ("stage", "Stage"),
                ("amount", "Amount"),
                ("currency", "Currency"),
                ("closeDate", "Close date"),
                ("probability", "Probability %"),
                ("companyExternalId", "Company ID in the old system"),
                ("contactExternalId", "Contact ID in the old system"),
                ("clientEmail", "Client e-mail"),
                ("companyName", "Company name"),
                ("source", "Source"),
                ("owner", "Owner e-mail"),
            ],
        }
    }
}

pub const PRESETS: &[&str] = &["hubspot", "salesforce", "generic"];

/// Where a preset's files come from, as the upload form offers it ("from HubSpot").
pub fn source_label(preset: &str) -> &'static str {
    match preset {
        "hubspot" => "HubSpot",
        "salesforce" => "Salesforce",
        _ => "a spreadsheet",
    }
}

/// A header as compared: lower case, ASCII letters and digits only.
pub fn normalise(h: &str) -> String {
    h.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Recognises companies, contacts or deals from the headers.
pub fn detect(headers: &[String]) -> Option<Kind> {
    let h: Vec<String> = headers.iter().map(|x| normalise(x)).collect();
    let has = |k: &str| h.iter().any(|x| x == k);
    let any = |ks: &[&str]| ks.iter().any(|k| has(k));
    if any(&[
        "dealname",
        "dealstage",
        "stagename",
        "opportunityname",
        "stage",
    ]) {
        return Some(Kind::Deals);
    }
    // A person's own columns decide first; an e-mail alone does not, because company
    // lists often carry a general address too.
    if any(&[
        "firstname",
        "lastname",
        "fullname",
        "contactname",
        "jobtitle",
        "title",
        "mobile",
        "mobilephone",
    ]) {
        return Some(Kind::Contacts);
    }
    if any(&[
        "companyname",
        "accountname",
        "companydomainname",
        "website",
        "domain",
        "industry",
        "numberofemployees",
        "employees",
        "annualrevenue",
    ]) {
        return Some(Kind::Companies);
    }
    if any(&["email", "emailaddress"]) {
        return Some(Kind::Contacts);
    }
    if any(&["name", "company"]) {
        return Some(Kind::Companies);
    }
    None
}

/// The target of a normalised header under a preset, if any.
fn target(preset: &str, kind: Kind, h: &str) -> Option<&'static str> {
    use Kind::*;
    let common = match (kind, h) {
        (_, "externalid") => Some("externalId"),
        (Contacts | Deals, "companyexternalid" | "companyid") => Some("companyExternalId"),
        (Deals, "contactexternalid") => Some("contactExternalId"),
        (_, "owner" | "owneremail") => Some("owner"),
        (_, "source" | "leadsource") => Some("source"),
        (Companies | Contacts, "city") => Some("city"),
        (Companies | Contacts, "country") => Some("country"),
        (Companies | Contacts, "phone" | "phonenumber" | "telephone") => Some("phone"),
        (Companies | Contacts, "notes" | "description" | "note") => Some("notes"),
        (Companies | Contacts, "status") => Some("status"),
        (Companies, "companyname" | "company" | "name" | "accountname" | "organization") => {
            Some("companyName")
        }
        (Companies, "website" | "domain" | "url") => Some("domain"),
        (Companies, "industry") => Some("industry"),
        (Companies, "street" | "address" | "streetaddress") => Some("street"),
        (Companies, "region" | "state") => Some("region"),
        (Companies, "postalcode" | "zip" | "zipcode" | "postcode") => Some("postalCode"),
        (Contacts, "firstname" | "givenname") => Some("firstName"),
        (Contacts, "lastname" | "surname" | "familyname") => Some("lastName"),
        (Contacts, "email" | "emailaddress") => Some("email"),
        (Contacts, "emailoptout" | "optedoutofemail" | "unsubscribed") => Some("emailOptOut"),
        (Contacts, "donotcall") => Some("doNotCall"),
        (Contacts, "mobile" | "mobilephone" | "mobilephonenumber") => Some("mobile"),
        (Contacts, "company" | "companyname" | "organization" | "accountname") => {
            Some("companyName")
        }
        (Deals, "dealname" | "name" | "opportunityname") => Some("name"),
        (Deals, "stage" | "dealstage" | "stagename") => Some("stage"),
        (Deals, "amount" | "value") => Some("amount"),
        (Deals, "currency" | "currencyisocode" | "dealcurrencycode") => Some("currency"),
        (Deals, "closedate" | "expectedclosedate") => Some("closeDate"),
        (Deals, "probability" | "probabilitypercent") => Some("probability"),
        (Deals, "clientemail" | "email") => Some("clientEmail"),
        (Deals, "company" | "companyname" | "accountname") => Some("companyName"),
        _ => None,
    };
    let specific = match (preset, kind, h) {
        ("hubspot", _, "recordid" | "hsobjectid") => Some("externalId"),
        ("hubspot", Companies, "companydomainname") => Some("domain"),
        ("hubspot", Companies, "stateregion") => Some("region"),
        ("hubspot", Companies | Contacts, "countryregion") => Some("country"),
        ("hubspot", Companies, "companyowner") => Some("owner"),
        ("hubspot", Contacts, "contactowner") => Some("owner"),
        ("hubspot", Contacts, "lifecyclestage") => Some("status"),
        ("hubspot", Contacts, "originalsource" | "hsanalyticssource") => Some("source"),
        (
            "hubspot",
            Contacts | Deals,
            "associatedcompanyids" | "associatedcompanyid" | "associatedcompany",
        ) => Some("companyExternalId"),
        ("hubspot", Deals, "associatedcontactids" | "associatedcontactid") => {
            Some("contactExternalId")
        }
        ("hubspot", Deals, "dealowner") => Some("owner"),
        ("salesforce", _, "id" | "recordid") => Some("externalId"),
        ("salesforce", Companies, "billingstreet") => Some("street"),
        ("salesforce", Companies, "billingcity") => Some("city"),
        ("salesforce", Companies, "billingstate") => Some("region"),
        ("salesforce", Companies, "billingpostalcode" | "billingzippostalcode") => {
            Some("postalCode")
        }
        ("salesforce", Companies, "billingcountry") => Some("country"),
        ("salesforce", Contacts, "mailingcity") => Some("city"),
        ("salesforce", Contacts, "mailingcountry") => Some("country"),
        ("salesforce", Contacts | Deals, "accountid") => Some("companyExternalId"),
        ("salesforce", Contacts, "hasoptedoutofemail" | "emailoptout") => Some("emailOptOut"),
        ("salesforce", Contacts, "donotcall") => Some("doNotCall"),
        ("salesforce", Deals, "contactid") => Some("contactExternalId"),
        ("generic", _, "id") => Some("externalId"),
        _ => None,
    };
    specific.or(common)
}

/// The preset's mapping for these headers: one target (or none) per column; each target
/// is used once, by its first column.
pub fn mapping(preset: &str, kind: Kind, headers: &[String]) -> Vec<Option<String>> {
    let mut used: Vec<&str> = Vec::new();
    headers
        .iter()
        .map(|h| {
            let t = target(preset, kind, &normalise(h))?;
            if used.contains(&t) {
                return None;
            }
            used.push(t);
            Some(t.to_string())
        })
        .collect()
}

/// A stage name from HubSpot's or Salesforce's default pipelines, in the words of Rapport's
/// default pipeline; other names are matched by name as they are.
pub fn stage_alias(stage: &str) -> &str {
    match normalise(stage).as_str() {
        "appointmentscheduled" | "prospecting" => "Qualification",
        "qualifiedtobuy" | "valueproposition" | "needsanalysis" => "Needs analysis",
        "presentationscheduled"
        | "decisionmakerboughtin"
        | "iddecisionmakers"
        | "perceptionanalysis"
        | "proposalpricequote" => "Proposal",
        "contractsent" | "negotiationreview" => "Negotiation",
        "closedwon" => "Won",
        "closedlost" => "Lost",
        _ => stage,
    }
}

/// A lifecycle stage or status in Rapport's words.
pub fn status_alias(s: &str) -> Option<&'static str> {
    match normalise(s).as_str() {
        "" => None,
        "subscriber"
        | "lead"
        | "marketingqualifiedlead"
        | "salesqualifiedlead"
        | "new"
        | "open" => Some("lead"),
        "opportunity" | "prospect" | "inprogress" => Some("prospect"),
        "customer" | "evangelist" | "customerdirect" | "customerchannel" => Some("customer"),
        "inactive" | "other" | "formercustomer" | "unqualified" => Some("inactive"),
        _ => None,
    }
}

/// A country as its ISO 3166 alpha-2 code (what Rapport stores), from a code or a common
/// English name.
pub fn country_code(s: &str) -> Option<&'static str> {
    const NAMES: &[(&str, &str)] = &[
        ("unitedstates", "US"),
        ("unitedstatesofamerica", "US"),
        ("usa", "US"),
        ("us", "US"),
        ("unitedkingdom", "GB"),
        ("uk", "GB"),
        ("greatbritain", "GB"),
        ("england", "GB"),
        ("gb", "GB"),
        ("canada", "CA"),
        ("ca", "CA"),
        ("germany", "DE"),
        ("deutschland", "DE"),
        ("de", "DE"),
        ("france", "FR"),
        ("fr", "FR"),
        ("poland", "PL"),
        ("polska", "PL"),
        ("pl", "PL"),
        ("spain", "ES"),
        ("es", "ES"),
        ("italy", "IT"),
        ("it", "IT"),
        ("netherlands", "NL"),
        ("thenetherlands", "NL"),
        ("nl", "NL"),
        ("belgium", "BE"),
        ("be", "BE"),
        ("switzerland", "CH"),
        ("ch", "CH"),
        ("austria", "AT"),
        ("at", "AT"),
        ("sweden", "SE"),
        ("se", "SE"),
        ("norway", "NO"),
        ("no", "NO"),
        ("denmark", "DK"),
        ("dk", "DK"),
        ("finland", "FI"),
        ("fi", "FI"),
        ("ireland", "IE"),
        ("ie", "IE"),
        ("portugal", "PT"),
        ("pt", "PT"),
        ("czechrepublic", "CZ"),
        ("czechia", "CZ"),
        ("cz", "CZ"),
        ("australia", "AU"),
        ("au", "AU"),
        ("newzealand", "NZ"),
        ("nz", "NZ"),
        ("japan", "JP"),
        ("jp", "JP"),
        ("china", "CN"),
        ("cn", "CN"),
        ("india", "IN"),
        ("in", "IN"),
        ("brazil", "BR"),
        ("br", "BR"),
        ("mexico", "MX"),
        ("mx", "MX"),
        ("singapore", "SG"),
        ("sg", "SG"),
        ("southafrica", "ZA"),
        ("za", "ZA"),
        ("israel", "IL"),
        ("il", "IL"),
        ("unitedarabemirates", "AE"),
        ("uae", "AE"),
        ("ae", "AE"),
        ("southkorea", "KR"),
        ("korea", "KR"),
        ("kr", "KR"),
    ];
    let n = normalise(s);
    NAMES.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
}

/// A yes/no cell.
pub fn truthy(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "y" | "1" | "x" | "checked"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn labels_and_api_names_map_alike() {
        let labels = h(&["Record ID", "First Name", "Email", "Associated Company IDs"]);
        let api = h(&["hs_object_id", "firstname", "email", "associatedcompanyid"]);
        for headers in [labels, api] {
            assert_eq!(detect(&headers), Some(Kind::Contacts));
            assert_eq!(
                mapping("hubspot", Kind::Contacts, &headers),
                vec![
                    Some("externalId".to_string()),
                    Some("firstName".to_string()),
                    Some("email".to_string()),
                    Some("companyExternalId".to_string())
                ]
            );
        }
        let sf = h(&["Id", "AccountId", "StageName", "Amount"]);
        assert_eq!(detect(&sf), Some(Kind::Deals));
        assert_eq!(
            mapping("salesforce", Kind::Deals, &sf)[1].as_deref(),
            Some("companyExternalId")
        );
        assert_eq!(stage_alias("Proposal/Price Quote"), "Proposal");
        assert_eq!(stage_alias("closedwon"), "Won");
    }

    #[test]
    fn a_company_list_with_an_email_column_is_companies() {
        let plain = h(&["id", "name", "website", "industry", "phone", "email"]);
        assert_eq!(detect(&plain), Some(Kind::Companies));
        assert_eq!(
            detect(&h(&["Name", "Email", "Job Title"])),
            Some(Kind::Contacts)
        );
        assert_eq!(detect(&h(&["Email", "Phone"])), Some(Kind::Contacts));
        assert_eq!(detect(&h(&["Notes", "Amount due"])), None);
    }
}
