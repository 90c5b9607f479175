//! `python -m monocore doctor`: the same report as `monocore doctor`
//! ([`monocore::doctor`]).

use pyo3::prelude::*;

/// Checks this host: `(can_boot, table, json)`, the table and the JSON as
/// `monocore doctor` and `monocore doctor --json` print them.
#[pyfunction]
pub(crate) fn doctor(py: Python<'_>) -> (bool, String, String) {
    py.detach(|| {
        let report = monocore::host::check();
        let json = format!("{:#}", monocore::doctor::json(&report));
        (report.can_boot(), monocore::doctor::table(&report), json)
    })
}
