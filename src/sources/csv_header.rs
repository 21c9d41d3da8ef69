//! Sources: the header row of a CSV file, read from the first bytes of the object. The
//! header names the columns, so files whose columns come in another order, or that carry
//! extra columns, are read correctly.

use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use url::Url;

use crate::error::{KpipeError, Result};

/// How much of a file is fetched at first; a longer header doubles it until found.
const FIRST_READ: u64 = 16 * 1024;
const MAX_HEADER: u64 = 4 * 1024 * 1024;

/// The column names of the header of `meta`, without a UTF-8 byte-order mark.
pub async fn read(store: &dyn ObjectStore, meta: &ObjectMeta, folder: &Url) -> Result<Vec<String>> {
    let name = || {
        format!(
            "{}://{}/{}",
            folder.scheme(),
            folder.host_str().unwrap_or_default(),
            meta.location
        )
    };
    if meta.size == 0 {
        return Err(KpipeError::Data(format!(
            "{}: the file is empty; a CSV extract starts with a header row",
            name()
        )));
    }
    let mut len = FIRST_READ.min(meta.size);
    loop {
        let bytes = store
            .get_range(&meta.location, 0..len)
            .await
            .map_err(|e| KpipeError::from_store(e, &format!("reading the header of {}", name())))?;
        match parse(&bytes, len == meta.size) {
            Ok(Some(header)) => return Ok(header),
            Ok(None) if len < meta.size && len < MAX_HEADER => len = (len * 2).min(meta.size),
            Ok(None) => {
                return Err(KpipeError::Data(format!(
                    "{}:1: the header row does not end",
                    name()
                )));
            }
            Err(problem) => return Err(KpipeError::Data(format!("{}:1: {problem}", name()))),
        }
    }
}

/// Parses the first record of `bytes` (RFC 4180). `None` when it does not end within
/// `bytes` and more may follow.
fn parse(bytes: &[u8], whole_file: bool) -> Result<Option<Vec<String>>, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut quoted = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if quoted {
            match (b, bytes.get(i + 1)) {
                (b'"', Some(b'"')) => {
                    field.push(b'"');
                    i += 1;
                }
                (b'"', _) => quoted = false,
                _ => field.push(b),
            }
        } else {
            match b {
                b'"' if field.is_empty() => quoted = true,
                b',' => fields.push(text(std::mem::take(&mut field))?),
                b'\n' => {
                    if field.last() == Some(&b'\r') {
                        field.pop();
                    }
                    fields.push(text(field)?);
                    return check(fields).map(Some);
                }
                _ => field.push(b),
            }
        }
        i += 1;
    }
    if !whole_file {
        return Ok(None);
    }
    if quoted {
        return Err("the header row has an unclosed quote".into());
    }
    fields.push(text(field)?);
    check(fields).map(Some)
}

fn text(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| format!("the header row is not UTF-8 ({e})"))
}

fn check(fields: Vec<String>) -> Result<Vec<String>, String> {
    for (i, name) in fields.iter().enumerate() {
        if fields[..i].contains(name) {
            return Err(format!("the header names column `{name}` twice"));
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &[u8]) -> Vec<String> {
        parse(text, true).unwrap().unwrap()
    }

    #[test]
    fn reads_plain_quoted_and_bom_prefixed_headers() {
        assert_eq!(header(b"a,b,c\n1,2,3\n"), ["a", "b", "c"]);
        assert_eq!(
            header(b"\xEF\xBB\xBFa,\"b,x\",\"c\"\"q\"\r\n1"),
            ["a", "b,x", "c\"q"]
        );
        assert_eq!(header(b"only"), ["only"]);
    }

    #[test]
    fn waits_for_more_bytes_when_the_row_is_cut() {
        assert_eq!(parse(b"a,b", false).unwrap(), None);
        assert_eq!(parse(b"a,\"b\nc", false).unwrap(), None);
    }

    #[test]
    fn rejects_non_utf8_duplicates_and_unclosed_quotes() {
        assert!(parse(b"a,\xff\n", true).unwrap_err().contains("not UTF-8"));
        assert!(parse(b"a,b,a\n", true).unwrap_err().contains("`a` twice"));
        assert!(
            parse(b"a,\"b\n", true)
                .unwrap_err()
                .contains("unclosed quote")
        );
    }
}
