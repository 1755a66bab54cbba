"""Front ends of command-line commands whose library lives in a lower layer (`ganforge eval`: metrics/)."""
