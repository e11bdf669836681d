//! Schema evolution, in one place: ERCOT's column spellings across years and access paths.
//!
//! The same field is spelled differently by MIS CSVs, the Public API, older years and the annual
//! workbooks (`DSTFlag`, `RepeatedHourFlag`, `Repeated Hour Flag`, `RepeatHourFlag`, `SCEDTimeStamp`,
//! `Delivery Date`, ...). A header is compared after removing whitespace and underscores and
//! lower-casing, exactly like `COLUMN_ALIASES` in `pmp/isos/ercot/normalize.py`. Unknown (extra)
//! columns are ignored; a file without a repeated-hour flag (older years) has no repeated rows.

use crate::error::{BulkError, Place, Result};

/// The canonical fields the ERCOT layouts use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    DeliveryDate,
    HourEnding,
    DeliveryHour,
    DeliveryInterval,
    Repeated,
    ScedTimestamp,
    Location,
    LocationType,
    Price,
}

const ALL: [Col; 9] = [
    Col::DeliveryDate,
    Col::HourEnding,
    Col::DeliveryHour,
    Col::DeliveryInterval,
    Col::Repeated,
    Col::ScedTimestamp,
    Col::Location,
    Col::LocationType,
    Col::Price,
];

impl Col {
    /// The canonical name, as the Python normalizer names the field in errors about missing columns.
    pub fn name(self) -> &'static str {
        match self {
            Col::DeliveryDate => "delivery_date",
            Col::HourEnding => "hour_ending",
            Col::DeliveryHour => "delivery_hour",
            Col::DeliveryInterval => "delivery_interval",
            Col::Repeated => "repeated",
            Col::ScedTimestamp => "sced_timestamp",
            Col::Location => "location",
            Col::LocationType => "location_type",
            Col::Price => "price",
        }
    }

    fn index(self) -> usize {
        ALL.iter().position(|c| *c == self).unwrap_or(0)
    }
}

/// Header spelling (whitespace and underscores removed, lower case) -> canonical field.
pub fn canonical(header: &str) -> Option<Col> {
    let key: String = header
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    Some(match key.as_str() {
        "deliverydate" | "operday" => Col::DeliveryDate,
        "hourending" => Col::HourEnding,
        "deliveryhour" => Col::DeliveryHour,
        "deliveryinterval" => Col::DeliveryInterval,
        "dstflag" | "repeatedhourflag" | "repeathourflag" => Col::Repeated,
        "scedtimestamp" => Col::ScedTimestamp,
        "settlementpoint" | "settlementpointname" => Col::Location,
        "settlementpointtype" => Col::LocationType,
        "settlementpointprice" | "lmp" => Col::Price,
        _ => return None,
    })
}

/// Where each canonical field sits in one file's header, with the header's own spelling.
#[derive(Debug, Clone)]
pub struct Header {
    slots: [Option<usize>; ALL.len()],
    original: Vec<String>,
}

impl Header {
    /// Map a header record; `required` fields must all be present.
    pub fn new(place: &Place<'_>, fields: &[String], required: &[Col]) -> Result<Self> {
        let mut slots = [None; ALL.len()];
        for (i, f) in fields.iter().enumerate() {
            if let Some(col) = canonical(f) {
                slots[col.index()].get_or_insert(i);
            }
        }
        let header = Self { slots, original: fields.to_vec() };
        if let Some(missing) = required.iter().find(|c| header.get(**c).is_none()) {
            return Err(BulkError::at(
                place,
                Some(1),
                Some(missing.name()),
                format!("missing column; header is {:?}", header.original),
            ));
        }
        Ok(header)
    }

    pub fn get(&self, col: Col) -> Option<usize> {
        self.slots[col.index()]
    }

    /// The header as the file spells it (for error messages).
    pub fn spelled(&self, col: Col) -> &str {
        self.get(col).map(|i| self.original[i].trim()).unwrap_or(col.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_across_years_and_paths() {
        for (h, c) in [
            ("DSTFlag", Col::Repeated),
            ("DSTFlag    ", Col::Repeated),
            ("RepeatedHourFlag", Col::Repeated),
            ("Repeated Hour Flag", Col::Repeated),
            ("RepeatHourFlag", Col::Repeated),
            ("SCEDTimeStamp", Col::ScedTimestamp),
            ("SCEDTimestamp", Col::ScedTimestamp),
            ("Delivery Date", Col::DeliveryDate),
            ("DELIVERY_DATE", Col::DeliveryDate),
            ("OperDay", Col::DeliveryDate),
            ("Settlement Point Name", Col::Location),
            ("Settlement Point Price", Col::Price),
            ("LMP", Col::Price),
        ] {
            assert_eq!(canonical(h), Some(c), "{h}");
        }
        assert_eq!(canonical("Extra Column"), None);
    }

    #[test]
    fn missing_required_column_names_it() {
        let place = Place { archive: "x.csv", member: None };
        let fields = vec!["Foo".to_string(), "Bar".to_string()];
        let err = Header::new(&place, &fields, &[Col::DeliveryDate]).unwrap_err();
        assert_eq!(err.line, Some(1));
        assert_eq!(err.field.as_deref(), Some("delivery_date"));
        assert!(err.message.contains("missing column"));
    }
}
