"""Level 13: ~/data.txt is base64 of a rot13 sentence that ends with the password."""
from wg_solver import answer, login, run

with login() as c:
    text = run(c, "base64 -d data.txt | tr 'A-Za-z' 'N-ZA-Mn-za-m'")
    if "password" not in text:
        raise SystemExit(f"not decoded: {text!r}")
    answer(text.split()[-1])
