//! MongoDB wire protocol framing: OP_MSG (sections kind 0 and 1, optional
//! checksum) and the legacy OP_QUERY/OP_REPLY pair used by old handshakes.

use crate::error::{Error, Result};
use bson::{Bson, Document};
use tokio::io::{AsyncRead, AsyncReadExt};

pub const OP_REPLY: i32 = 1;
pub const OP_QUERY: i32 = 2004;
pub const OP_MSG: i32 = 2013;
pub const OP_COMPRESSED: i32 = 2012;

pub const FLAG_CHECKSUM: u32 = 1;
pub const FLAG_MORE_TO_COME: u32 = 1 << 1;

/// Largest message we accept (mongod's maxMessageSizeBytes).
pub const MAX_MESSAGE: usize = 48_000_000;

pub struct Header {
    pub request_id: i32,
    pub op_code: i32,
}

pub enum Request {
    Msg {
        header: Header,
        flags: u32,
        body: Document,
    },
    Query {
        header: Header,
        full_collection: String,
        query: Document,
    },
}

fn rd_i32(b: &[u8], at: usize) -> Result<i32> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(i32::from_le_bytes)
        .ok_or_else(|| Error::Protocol("truncated message".into()))
}

fn cstring(b: &[u8], at: usize) -> Result<(String, usize)> {
    let end = b[at..]
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| Error::Protocol("unterminated cstring".into()))?;
    Ok((
        String::from_utf8_lossy(&b[at..at + end]).into_owned(),
        at + end + 1,
    ))
}

/// Read one message. Returns Ok(None) on a clean EOF.
pub async fn read_request<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Request>> {
    let mut len_buf = [0u8; 4];
    match r.read_exact(&mut len_buf).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = i32::from_le_bytes(len_buf);
    if len < 16 || len as usize > MAX_MESSAGE {
        return Err(Error::Protocol(format!("bad message length {len}")));
    }
    let mut buf = vec![0u8; len as usize - 4];
    r.read_exact(&mut buf).await?;
    let header = Header {
        request_id: rd_i32(&buf, 0)?,
        op_code: rd_i32(&buf, 8)?,
    };
    let body = &buf[12..];
    match header.op_code {
        OP_MSG => {
            let flags = rd_i32(body, 0)? as u32;
            let mut end = body.len();
            if flags & FLAG_CHECKSUM != 0 {
                end = end.saturating_sub(4);
            }
            let mut at = 4;
            let mut main: Option<Document> = None;
            let mut seqs: Vec<(String, Vec<Bson>)> = Vec::new();
            while at < end {
                let kind = body[at];
                at += 1;
                match kind {
                    0 => {
                        let sz = rd_i32(body, at)? as usize;
                        let d = Document::from_reader(&body[at..at + sz])?;
                        main = Some(d);
                        at += sz;
                    }
                    1 => {
                        let sz = rd_i32(body, at)? as usize;
                        let sec_end = at + sz;
                        let (ident, mut p) = cstring(body, at + 4)?;
                        let mut docs = Vec::new();
                        while p < sec_end {
                            let dsz = rd_i32(body, p)? as usize;
                            docs.push(Bson::Document(Document::from_reader(&body[p..p + dsz])?));
                            p += dsz;
                        }
                        seqs.push((ident, docs));
                        at = sec_end;
                    }
                    k => return Err(Error::Protocol(format!("unknown OP_MSG section kind {k}"))),
                }
            }
            let mut main = main.ok_or_else(|| Error::Protocol("OP_MSG without body".into()))?;
            for (ident, docs) in seqs {
                main.insert(ident, docs);
            }
            Ok(Some(Request::Msg {
                header,
                flags,
                body: main,
            }))
        }
        OP_QUERY => {
            let (full_collection, at) = cstring(body, 4)?;
            let at = at + 8;
            let sz = rd_i32(body, at)? as usize;
            let mut query = Document::from_reader(&body[at..at + sz])?;
            // Legacy wrapping: {$query: {...}, $readPreference: ...}
            if let Ok(q) = query.get_document("$query") {
                query = q.clone();
            }
            Ok(Some(Request::Query {
                header,
                full_collection,
                query,
            }))
        }
        OP_COMPRESSED => Err(Error::Protocol(
            "OP_COMPRESSED is not supported (no compressors advertised)".into(),
        )),
        other => Err(Error::Protocol(format!("unsupported opCode {other}"))),
    }
}

fn header(buf: &mut Vec<u8>, request_id: i32, response_to: i32, op: i32) {
    buf.extend_from_slice(&0i32.to_le_bytes());
    buf.extend_from_slice(&request_id.to_le_bytes());
    buf.extend_from_slice(&response_to.to_le_bytes());
    buf.extend_from_slice(&op.to_le_bytes());
}

fn finish(buf: &mut [u8]) {
    let len = buf.len() as i32;
    buf[0..4].copy_from_slice(&len.to_le_bytes());
}

pub fn encode_msg(
    request_id: i32,
    response_to: i32,
    flags: u32,
    body: &Document,
) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(256);
    header(&mut buf, request_id, response_to, OP_MSG);
    buf.extend_from_slice(&flags.to_le_bytes());
    buf.push(0);
    body.to_writer(&mut buf)?;
    finish(&mut buf);
    Ok(buf)
}

pub fn encode_reply(request_id: i32, response_to: i32, body: &Document) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(256);
    header(&mut buf, request_id, response_to, OP_REPLY);
    buf.extend_from_slice(&0i32.to_le_bytes()); // responseFlags
    buf.extend_from_slice(&0i64.to_le_bytes()); // cursorID
    buf.extend_from_slice(&0i32.to_le_bytes()); // startingFrom
    buf.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
    body.to_writer(&mut buf)?;
    finish(&mut buf);
    Ok(buf)
}
