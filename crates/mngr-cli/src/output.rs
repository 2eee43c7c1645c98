//! Turning errors and records into what the user reads.

/// The error's message followed by its causes, each once, on one line.
pub fn describe_error(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
    }
    text
}

/// A snapshot as JSON: `{id, name, created_at}` with an RFC 3339 time.
pub fn snapshot_json(snapshot: &provider_api::SnapshotRecord) -> serde_json::Value {
    serde_json::json!({
        "id": snapshot.id,
        "name": snapshot.name,
        "created_at": snapshot
            .created_at
            .format(&time::format_description::well_known::Rfc3339)
            .ok(),
    })
}

/// Formats rows as left-aligned columns separated by two spaces.
pub fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|title| title.len()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            widths[index] = widths[index].max(cell.chars().count());
        }
    }
    let format_row = |cells: Vec<&str>| {
        let mut line = String::new();
        for (index, cell) in cells.iter().enumerate() {
            if index + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[index]));
            }
        }
        line.trim_end().to_string()
    };
    let mut table = format_row(header.to_vec());
    for row in rows {
        table.push('\n');
        table.push_str(&format_row(row.iter().map(String::as_str).collect()));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_table_aligns_columns() {
        let table = format_table(
            &["NAME", "STATE"],
            &[
                vec!["a".into(), "RUNNING".into()],
                vec!["longer".into(), "STOPPED".into()],
            ],
        );
        assert_eq!(table, "NAME    STATE\na       RUNNING\nlonger  STOPPED");
    }
}
