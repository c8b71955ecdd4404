//! Reading the project's documents: their fenced blocks.

pub struct Block {
    pub language: String,
    pub line: usize,
    pub text: String,
    /// "`NAME`:" ending the line before the fence names the block as a file.
    pub name: Option<String>,
}

/// The fenced blocks of a document, with their first line number; an
/// indented fence (inside a list item) is unindented.
pub fn fenced_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<(Block, usize)> = None;
    let mut previous = "";
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut current {
            None => {
                if let Some(language) = trimmed.strip_prefix("```") {
                    let name = previous
                        .trim_end()
                        .strip_suffix("`:")
                        .and_then(|rest| rest.rsplit_once('`'))
                        .map(|(_, name)| name.to_owned());
                    let block = Block {
                        language: language.trim().to_owned(),
                        line: index + 1,
                        text: String::new(),
                        name,
                    };
                    current = Some((block, indent));
                }
            }
            Some(_) if trimmed == "```" => {
                blocks.push(current.take().unwrap().0);
            }
            Some((block, indent)) => {
                let cut = line.len().min(*indent);
                block.text.push_str(line.get(cut..).unwrap_or(line));
                block.text.push('\n');
            }
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    blocks
}
