//! Static checks of a plugin module before it is compiled: the API version in its
//! custom section, and its imports (only Extism's host environment is allowed).
//! A few dozen lines of the wasm binary format beat pulling in a parser for this.

/// Import modules a plugin may use: Extism's runtime functions. Host functions behind
/// capabilities will add `extism:host/user` when they exist.
pub const ALLOWED_IMPORT_MODULES: &[&str] = &["extism:host/env"];

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let v = *self.b.get(self.at).ok_or("the module ends early")?;
        self.at += 1;
        Ok(v)
    }

    fn leb(&mut self) -> Result<u64, String> {
        let mut result = 0u64;
        let mut shift = 0;
        loop {
            let byte = self.byte()?;
            result |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(result);
            }
            shift += 7;
            if shift > 63 {
                return Err("a number in the module is too long".into());
            }
        }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or("the module ends early")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn name(&mut self) -> Result<String, String> {
        let n = usize::try_from(self.leb()?).map_err(|_| "a name is too long")?;
        String::from_utf8(self.bytes(n)?.to_vec()).map_err(|_| "a name is not UTF-8".into())
    }

    fn limits(&mut self) -> Result<(), String> {
        let flags = self.byte()?;
        self.leb()?;
        if flags & 1 == 1 {
            self.leb()?;
        }
        Ok(())
    }
}

/// What the checks found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ModuleFacts {
    pub api_version: Option<String>,
    pub imports: Vec<(String, String)>,
    pub exports: Vec<String>,
}

/// Reads the module's version section, imports and exported names.
pub fn inspect(wasm: &[u8]) -> Result<ModuleFacts, String> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err("this is not a WebAssembly module".into());
    }
    let mut r = Reader { b: wasm, at: 8 };
    let mut facts = ModuleFacts::default();
    while r.at < wasm.len() {
        let id = r.byte()?;
        let size = usize::try_from(r.leb()?).map_err(|_| "a section is too large")?;
        let body = r.bytes(size)?;
        let mut s = Reader { b: body, at: 0 };
        match id {
            0 => {
                let name = s.name()?;
                if name == rapport_plugin_sdk::API_VERSION_SECTION {
                    facts.api_version = Some(
                        String::from_utf8_lossy(&body[s.at..])
                            .trim_end_matches('\0')
                            .to_string(),
                    );
                }
            }
            2 => {
                for _ in 0..s.leb()? {
                    let module = s.name()?;
                    let field = s.name()?;
                    match s.byte()? {
                        0x00 => {
                            s.leb()?;
                        }
                        0x01 => {
                            s.byte()?;
                            s.limits()?;
                        }
                        0x02 => s.limits()?,
                        0x03 => {
                            s.byte()?;
                            s.byte()?;
                        }
                        0x04 => {
                            s.byte()?;
                            s.leb()?;
                        }
                        other => return Err(format!("unknown import kind {other}")),
                    }
                    facts.imports.push((module, field));
                }
            }
            7 => {
                for _ in 0..s.leb()? {
                    let name = s.name()?;
                    s.byte()?;
                    s.leb()?;
                    facts.exports.push(name);
                }
            }
            _ => {}
        }
    }
    Ok(facts)
}
