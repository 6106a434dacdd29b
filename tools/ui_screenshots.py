"""Screenshots of `brushwork ui` before and after a run, from a real headless Chromium, for the README.

  python tools/ui_screenshots.py [--content PHOTO] [--style PAINTING] [--out docs]

Starts the page on a free port, uploads the photo and the painting, stylizes with the optimize `fast` preset at
384 px, and writes OUT/ui-before.jpg (the page with its inputs) and OUT/ui-after.jpg (with the result)."""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAIRS = ROOT.parent / "shared" / "data" / "pairs"


def main() -> None:
    from playwright.sync_api import sync_playwright

    from brushwork import ui

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", type=Path, default=PAIRS / "content" / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=PAIRS / "style" / "starry_night.jpg")
    parser.add_argument("--size", default="384")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    browser_path = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    if browser_path is None:
        sys.exit("ui_screenshots: no Chromium installed (apt-get install chromium)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    page_app, work = ui.serve("127.0.0.1", port, block=False)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(f"http://127.0.0.1:{port}")
            page.locator("#content input[type=file]").set_input_files(str(args.content))
            page.locator("#styles input[type=file]").set_input_files(str(args.style))
            box = page.locator("#preset input")
            box.click()
            box.fill("fast")
            page.get_by_role("option", name="fast", exact=True).click()
            number = page.locator("#size input[type=number]")
            number.fill(args.size)
            number.press("Enter")
            page.wait_for_timeout(1500)
            page.screenshot(path=str(args.out / "ui-before.jpg"), full_page=True, type="jpeg", quality=80)
            page.locator("#stylize").click()
            page.locator("#status", has_text="Done").wait_for(timeout=900_000)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(args.out / "ui-after.jpg"), full_page=True, type="jpeg", quality=80)
            browser.close()
    finally:
        page_app.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"ui_screenshots: {args.out / 'ui-before.jpg'}, {args.out / 'ui-after.jpg'}")


if __name__ == "__main__":
    main()
