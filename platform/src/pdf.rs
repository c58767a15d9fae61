//! A small A4 document writer over `pdf-writer`: text in the standard Helvetica fonts
//! (nothing to embed, so documents stay a few kilobytes) and filled rectangles for bar
//! charts, flowing onto new pages. Quotes and scheduled reports are written with it.
//!
//! why pdf-writer: it writes PDF objects and nothing else (no font shaping, no layout
//! engine), so it costs little to build; the layout here is a cursor moving down a page.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

pub const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const TOP: f32 = 800.0;
const BOTTOM: f32 = 60.0;
pub const LEFT: f32 = 50.0;
pub const RIGHT: f32 = WIDTH - 50.0;

enum Mark {
    Text {
        x: f32,
        y: f32,
        text: String,
        bold: bool,
        size: f32,
    },
    /// A filled rectangle, `gray` from 0 (black) to 1 (white).
    Bar {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        gray: f32,
    },
}

/// A document being written top to bottom; `y` is where the next line goes.
pub struct Doc {
    pages: Vec<Vec<Mark>>,
    y: f32,
}

impl Default for Doc {
    fn default() -> Self {
        Self::new()
    }
}

impl Doc {
    pub fn new() -> Self {
        Self {
            pages: vec![Vec::new()],
            y: TOP,
        }
    }

    pub fn y(&self) -> f32 {
        self.y
    }

    /// Moves down by `dy`.
    pub fn down(&mut self, dy: f32) {
        self.y -= dy;
    }

    /// Starts a new page when less than `space` is left on this one.
    pub fn need(&mut self, space: f32) {
        if self.y - space < BOTTOM {
            self.pages.push(Vec::new());
            self.y = TOP;
        }
    }

    fn mark(&mut self, m: Mark) {
        if let Some(page) = self.pages.last_mut() {
            page.push(m);
        }
    }

    /// Text at `x` on the current line (10 pt, 11 pt bold).
    pub fn text(&mut self, x: f32, text: impl Into<String>, bold: bool) {
        let size = if bold { 11.0 } else { 10.0 };
        self.sized(x, text, bold, size);
    }

    pub fn sized(&mut self, x: f32, text: impl Into<String>, bold: bool, size: f32) {
        let y = self.y;
        self.mark(Mark::Text {
            x,
            y,
            text: text.into(),
            bold,
            size,
        });
    }

    /// A bar from `x`, `w` wide and `h` high, standing on the current line.
    pub fn bar(&mut self, x: f32, w: f32, h: f32, gray: f32) {
        let y = self.y;
        self.mark(Mark::Bar { x, y, w, h, gray });
    }

    /// Wraps `text` at about `chars` characters a line, one line per call of `line`.
    pub fn paragraph(&mut self, x: f32, text: &str, chars: usize, leading: f32) {
        for para in text.lines() {
            let mut line = String::new();
            for word in para.split_whitespace() {
                if !line.is_empty() && line.len() + word.len() > chars {
                    self.need(leading);
                    self.text(x, std::mem::take(&mut line), false);
                    self.down(leading);
                }
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
            }
            self.need(leading);
            self.text(x, line, false);
            self.down(leading);
        }
    }

    pub fn finish(self) -> Vec<u8> {
        let mut pdf = Pdf::new();
        let catalog_id = Ref::new(1);
        let tree_id = Ref::new(2);
        let font_id = Ref::new(3);
        let bold_id = Ref::new(4);
        let mut next = 5;
        let mut page_ids = Vec::new();
        let mut content_ids = Vec::new();
        for _ in &self.pages {
            page_ids.push(Ref::new(next));
            content_ids.push(Ref::new(next + 1));
            next += 2;
        }
        pdf.catalog(catalog_id).pages(tree_id);
        pdf.pages(tree_id)
            .kids(page_ids.iter().copied())
            .count(i32::try_from(page_ids.len()).unwrap_or(1));
        pdf.type1_font(font_id)
            .base_font(Name(b"Helvetica"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.type1_font(bold_id)
            .base_font(Name(b"Helvetica-Bold"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        for (i, marks) in self.pages.iter().enumerate() {
            let mut page = pdf.page(page_ids[i]);
            page.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT));
            page.parent(tree_id);
            page.contents(content_ids[i]);
            let mut resources = page.resources();
            let mut fonts = resources.fonts();
            fonts.pair(Name(b"F1"), font_id);
            fonts.pair(Name(b"F2"), bold_id);
            fonts.finish();
            resources.finish();
            page.finish();
            let mut content = Content::new();
            for m in marks {
                match m {
                    Mark::Text {
                        x,
                        y,
                        text,
                        bold,
                        size,
                    } => {
                        content.begin_text();
                        content.set_font(Name(if *bold { b"F2" } else { b"F1" }), *size);
                        content.next_line(*x, *y);
                        content.show(Str(&latin1(text)));
                        content.end_text();
                    }
                    Mark::Bar { x, y, w, h, gray } => {
                        content.save_state();
                        content.set_fill_gray(*gray);
                        content.rect(*x, *y, *w, *h);
                        content.fill_nonzero();
                        content.restore_state();
                    }
                }
            }
            pdf.stream(content_ids[i], &content.finish());
        }
        pdf.finish()
    }
}

/// WinAnsi covers Latin-1 and a few typographic marks; anything beyond shows as `?`
/// rather than as garbage.
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            '…' => 0x85,
            '–' => 0x96,
            '—' => 0x97,
            '€' => 0x80,
            c if (c as u32) < 256 => c as u8,
            _ => b'?',
        })
        .collect()
}

/// `s` cut to `chars` characters, with an ellipsis when cut.
pub fn clip(s: &str, chars: usize) -> String {
    if s.chars().count() <= chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_documents_flow_onto_new_pages() {
        let mut d = Doc::new();
        for i in 0..200 {
            d.need(14.0);
            d.text(LEFT, format!("Line {i} — déjà vu"), false);
            d.down(14.0);
        }
        assert!(d.pages.len() >= 4, "{} pages", d.pages.len());
        let bytes = d.finish();
        assert!(bytes.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("/Count 4") || text.contains("/Count 5"));
    }

    #[test]
    fn text_outside_latin1_is_replaced_not_garbled() {
        assert_eq!(latin1("Zoë — 東京 €"), b"Zo\xeb \x97 ?? \x80".to_vec());
        assert_eq!(clip("Quarterly review", 9), "Quarterl…");
        assert_eq!(clip("Short", 9), "Short");
    }
}
