//! Fuzzes the S3 backend's parsers of server answers (crates/remote/src/s3.rs): ListObjectsV2
//! pages, the InitiateMultipartUpload answer, the error document of a failed request or of a
//! CompleteMultipartUpload answered with 200. A hostile or broken server sends any bytes:
//! nothing may panic, and what a listing returns must come from the body (bounded by it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_remote::fuzzing::{
    s3_error_code_message, s3_error_text, s3_is_error_document, s3_list_page, s3_upload_id,
};

fuzz_target!(|data: &[u8]| {
    if let Ok((objects, prefixes, _truncated, token)) = s3_list_page(data) {
        // Every name is text of the body, and references only shrink (`&lt;`, `&#x10FFFF;`;
        // DTD entities are refused): the names cannot add up to more than the body.
        let names: usize = objects.iter().map(|(k, _)| k.len()).sum::<usize>()
            + prefixes.iter().map(String::len).sum::<usize>()
            + token.as_ref().map_or(0, String::len);
        assert!(
            names <= data.len(),
            "{names} bytes of names from {} bytes",
            data.len()
        );
        assert!(token.as_ref().is_none_or(|t| !t.is_empty()));
    }
    if let Some(id) = s3_upload_id(data) {
        assert!(id.len() <= data.len());
    }
    let (code, msg) = s3_error_code_message(data);
    assert!(code.len() + msg.len() <= data.len());
    let is_error = s3_is_error_document(data);
    assert!(!is_error || data.starts_with(b"<?xml"));
    let status = data.first().map_or(500, |b| 200 + u16::from(*b) * 2);
    let text = s3_error_text(status, data);
    assert!(text.starts_with(&format!("HTTP {status}")));
    if !code.is_empty() {
        assert!(text.contains(&code));
    }
});
