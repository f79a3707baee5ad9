//! Owns how exports are encoded and streamed: CSV rows (CRLF, every cell
//! made formula-safe), NDJSON lines, and sending one chunk on a streamed
//! body. Shared by the session export and the audit export.

use bytes::Bytes;
use serde::Serialize;

use crate::http::streamed::BodySender;

/// Sends one encoded chunk (nothing when it is empty); an error when the
/// client went away.
pub async fn send_chunk(body: &BodySender, chunk: Vec<u8>) -> Result<(), String> {
    if chunk.is_empty() {
        return Ok(());
    }
    body.send(Bytes::from(chunk))
        .await
        .map_err(|_| "the client went away".to_string())
}

/// One JSON object per line.
pub fn ndjson_lines<T: Serialize>(items: &[T]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for item in items {
        serde_json::to_writer(&mut out, item).map_err(|e| e.to_string())?;
        out.push(b'\n');
    }
    Ok(out)
}

/// CSV rows, CRLF-terminated, with `header` first when given; every cell
/// goes through [`formula_safe`].
pub fn csv_table<R>(header: Option<&[&str]>, records: R) -> Result<Vec<u8>, String>
where
    R: IntoIterator,
    R::Item: IntoIterator<Item = String>,
{
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    if let Some(header) = header {
        writer.write_record(header).map_err(|e| e.to_string())?;
    }
    for record in records {
        writer
            .write_record(record.into_iter().map(formula_safe))
            .map_err(|e| e.to_string())?;
    }
    writer.into_inner().map_err(|e| e.to_string())
}

/// A cell a spreadsheet will not evaluate: `'` before a leading `=`, `+`,
/// `-`, `@`, tab or carriage return (as OWASP advises for CSV injection).
pub fn formula_safe(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_look_like_formulas_are_quoted_with_an_apostrophe() {
        for risky in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(formula_safe(risky.to_string()), format!("'{risky}"));
        }
        for plain in ["alice", "", "1.5", "a=b", "'already"] {
            assert_eq!(formula_safe(plain.to_string()), plain);
        }
    }

    #[test]
    fn every_cell_is_formula_safe_and_rows_end_in_crlf() {
        let rows = [["=1+1".to_string(), "plain".to_string()]];
        let out = csv_table(Some(&["a", "b"]), rows).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a,b\r\n'=1+1,plain\r\n");
    }

    #[test]
    fn ndjson_is_one_object_per_line() {
        let out =
            ndjson_lines(&[serde_json::json!({"a": 1}), serde_json::json!({"b": 2})]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
    }
}
