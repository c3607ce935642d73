"""The documentation site: `sphinx-build -W` builds it offline, and its pages work in Chromium.

One build per test session (shared by the xdist workers through a lock file) into a temporary
directory; the notebooks are rendered from their saved outputs, never executed. The browser test
drives Debian's /usr/bin/chromium through playwright (no browser is downloaded), blocks every
request that is not a local file, and saves a screenshot of each page it opens under
docs/_build/screenshots/.
"""

from __future__ import annotations

import fcntl
import html
import json
import os
import pathlib
import re
import subprocess
import sys
import time
import tomllib
import urllib.parse

import pytest

pytestmark = pytest.mark.docs

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCREENSHOTS = DOCS / "_build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Every heading (level, text) of the study guide 深度学习问题总结 below its title, in its order:
# the Questions page must show each one (docs/questions.toml holds the answers).
STUDY_GUIDE_HEADINGS = [
    (2, "DNN、CNN、RNN和LSTM的区别？"),
    (2, "卷积神经网络CNN"),
    (3, "卷积神经网络的特点"),
    (3, "卷积层的作用"),
    (3, "池化层的作用"),
    (3, "填充和步长问题"),
    (3, "转置卷积/反卷积(deconvolution)的输出大小"),
    (3, "卷积神经网络中空洞卷积的作用是什么"),
    (3, "$1\\times 1$卷积的作用"),
    (3, "感受野怎么计算？"),
    (3, "卷积神经网络参数量和计算量的计算。"),
    (3, "卷积核的大小(尺寸)为什么都是奇数的？这样有什么好处？"),
    (3, "卷积核是否一定越大越好？"),
    (3, "为什么现在倾向于用小尺寸的卷积核？"),
    (3, "怎么减少卷积层参数量？"),
    (3, "简单叙述卷积神经网络的前向传播和反向传播过程"),
    (4, "反向传播"),
    (2, "激活函数相关"),
    (3, "为什么需要非线性激活函数？"),
    (3, "为什么激活函数需要非线性函数？"),
    (3, "常见的激活函数"),
    (3, "激活函数有哪些性质？"),
    (3, "如何选择激活函数？"),
    (3, "什么时候可以用线性激活函数？"),
    (3, "使用ReLU激活函数有什么优点(相比于sigmoid激活函数)？"),
    (3, "怎么理解ReLU(<0时)是非线性激活函数？"),
    (3, "为什么tanh激活函数会比sigmoid激活函数的表现好？"),
    (2, "Batch Size相关问题"),
    (3, "在合理的范围内，增大batch size有何好处？"),
    (3, "盲目增大batch size有何坏处？"),
    (3, "调节batch size对训练效果影响到底如何？"),
    (3, "深度学习中的batch size的大小对训练过程的影响是什么样的？"),
    (2, "归一化相关问题"),
    (3, "有哪些特征归一化的方法，为什么要做归一化？"),
    (3, "什么是BN(批归一化)？有什么作用？为什么BN会对学习率变的不敏感？"),
    (3, "批归一化（BN）算法流程"),
    (3, "BN在训练和预测时有什么差别？"),
    (3, "BN训练时为什么不用全量训练集的均值和方差呢？"),
    (2, "梯度消失和梯度爆炸的产生的原理以及常用解决方法是什么？"),
    (2, "什么是过拟合,欠拟合，解决过拟合和欠拟合的方法有哪些？"),
    (2, "Dropout 为什么能够防止过拟合？"),
    (2, "BN和dropout之间的冲突？"),
    (2, "深度学习中的常用的损失函数"),
    (3, "分类损失函数"),
    (3, "回归损失函数"),
    (2, "数据增强"),
]


# -- the build --------------------------------------------------------------------------------


def _shared_dir(tmp_path_factory) -> pathlib.Path:
    """One directory for the whole session: the parent of the workers' dirs under xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> dict:
    """Build the site once per session: {"out": html dir, "rc", "log", "seconds"}."""
    shared = _shared_dir(tmp_path_factory)
    out = shared / "docs-html"
    record = shared / "docs-build.json"
    with open(shared / "docs-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first worker builds; the others wait, then read
        if not record.exists():
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
                + ["-d", str(shared / "docs-doctrees"), str(DOCS), str(out)],
                capture_output=True,
                text=True,
                env={**os.environ, "MPLBACKEND": "Agg"},
                timeout=900,
            )
            record.write_text(
                json.dumps(
                    {
                        "out": str(out),
                        "rc": proc.returncode,
                        "log": proc.stdout + proc.stderr,
                        "seconds": time.perf_counter() - start,
                    }
                )
            )
    return json.loads(record.read_text())


@pytest.fixture(scope="session")
def built(site) -> pathlib.Path:
    if site["rc"] != 0:
        pytest.fail(f"sphinx-build -W failed (rc {site['rc']}):\n{site['log'][-6000:]}")
    return pathlib.Path(site["out"])


# -- static checks of the HTML ----------------------------------------------------------------


class _Page:
    """Ids, links, loaded resources and headings of one page (Sphinx writes quoted attributes)."""

    def __init__(self, text: str):
        attr = r'\s(?:[^>]*?\s)?{}="([^"]*)"'
        resource_tags = r"<(?:script|img|iframe|source|video|audio)"
        self.ids = set(re.findall(r'\s(?:id|name)="([^"]*)"', text))
        self.links = [html.unescape(u) for u in re.findall(r"<a" + attr.format("href"), text)]
        self.resources = [
            html.unescape(u) for u in re.findall(resource_tags + attr.format("src"), text)
        ]
        self.resources += [
            html.unescape(u)
            for tag in re.findall(r"<link\s[^>]*>", text)
            if re.search(r'rel="(?:stylesheet|preload|icon)"', tag)
            for u in re.findall(r'href="([^"]*)"', tag)
        ]
        self.headings = [
            (int(level), " ".join(html.unescape(re.sub(r"<[^>]+>", "", body)).split()))
            for level, body in re.findall(r"<h([1-6])[^>]*>(.*?)</h\1>", text, re.S)
        ]


_PARSED: dict[pathlib.Path, _Page] = {}


def _parse(path: pathlib.Path) -> _Page:
    if path not in _PARSED:
        _PARSED[path] = _Page(path.read_text(encoding="utf-8"))
    return _PARSED[path]


def _is_external(url: str) -> bool:
    """A URL that would need the network (``file:`` and ``data:`` do not)."""
    scheme = re.match(r"^([a-z][a-z0-9+.-]*):", url, re.I)
    return bool(scheme) and scheme.group(1).lower() not in ("file", "data", "blob", "about")


def _broken(page_path: pathlib.Path, url: str) -> str | None:
    """Why a link or resource of ``page_path`` does not resolve in the built site, or None."""
    if _is_external(url) or re.match(r"^(data|blob|about|mailto):", url):
        return None
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "file":
        target = pathlib.Path(urllib.parse.unquote(parsed.path))
    elif parsed.path:
        target = (page_path.parent / urllib.parse.unquote(parsed.path)).resolve()
    else:
        target = page_path
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return f"{url}: no file {target}"
    frag = urllib.parse.unquote(parsed.fragment)
    if frag and target.suffix == ".html" and frag not in _parse(target).ids:
        return f"{url}: no id {frag!r} in {target.name}"
    return None


def test_site_builds_with_no_warning(site, built):
    print(f"[docs] sphinx-build -W took {site['seconds']:.1f} s")
    assert (built / "index.html").is_file()
    assert (built / "_static" / "mathjax" / "tex-svg-full.js").is_file()
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found"
    for stem in notebooks:  # picked up by glob: a new notebook gets a page without a docs edit
        assert (built / "notebooks" / f"{stem}.html").is_file(), stem
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        page = built / path.relative_to(ROOT).with_suffix(".html")
        assert page.is_file(), f"no test-source page for {path.relative_to(ROOT)}"


def test_every_resource_is_local_and_every_internal_link_resolves(built):
    pages = sorted(built.rglob("*.html"))
    assert len(pages) > 30
    problems = []
    for page_path in pages:
        page = _parse(page_path)
        for url in page.resources:
            if _is_external(url):
                problems.append(f"{page_path.relative_to(built)} loads {url} from the network")
            elif why := _broken(page_path, url):
                problems.append(f"{page_path.relative_to(built)}: resource {why}")
        for url in page.links:
            if why := _broken(page_path, url):
                problems.append(f"{page_path.relative_to(built)}: link {why}")
    for css in sorted((built / "_static").rglob("*.css")):
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", css.read_text(errors="replace")):
            if _is_external(url):
                problems.append(f"{css.relative_to(built)} loads {url} from the network")
    assert problems == [], "\n".join(problems[:50])


def test_questions_page_has_every_heading_of_the_guide_with_its_links(built):
    page = _parse(built / "questions.html")
    shown = [(level, text.rstrip("¶#").strip()) for level, text in page.headings if level > 1]
    # MathJax typesets `$1\times 1$` in the browser; in the HTML it is still `\(1\times 1\)`.
    expected = [
        (lv, t.replace("$1\\times 1$", "\\(1\\times 1\\)")) for lv, t in STUDY_GUIDE_HEADINGS
    ]
    assert shown == expected
    questions = tomllib.loads((DOCS / "questions.toml").read_text())["question"]
    assert [(q["level"], q["zh"]) for q in questions] == STUDY_GUIDE_HEADINGS
    text = (built / "questions.html").read_text(encoding="utf-8")
    for q in questions:  # each answer is followed by its code, test and notebook links
        block = text.split(f'id="{q["id"]}"', 1)[1].split('class="dlref-links', 1)[1]
        block = block.split("</ul>", 1)[0]
        assert 'href="api/generated/dlref.' in block, q["id"]
        assert 'href="tests/' in block, q["id"]
        assert 'href="notebooks/' in block, q["id"]


def test_notebook_links_written_for_the_repository_work_on_the_site(built):
    # A notebook links as a reader of the repository would; the site rewrites each link to the
    # page of that file (docs/_ext/dlref_docs.py, applied when a notebook is read).
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import dlref_docs
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    text = (
        "[e](../docs/errata.md#erratum-3) [t](../tests/test_nn.py) [m](../dlref/norm.py) "
        "[k](../kernels/im2col.py) [n](03_convolution.ipynb#x) [b](../bench/README.md) "
        "[w](https://example.com) [gone](../docs/no_such_page.md) ![img](plot.png)"
    )
    assert dlref_docs._notebook_links(text) == (
        "[e](/errata.md#erratum-3) [t](/tests/test_nn.md) [m](/api/generated/dlref.norm.rst) "
        "[k](/api/generated/dlref.kernels.im2col.rst) [n](/notebooks/03_convolution.ipynb#x) b "
        "[w](https://example.com) [gone](../docs/no_such_page.md) ![img](plot.png)"
    )


def test_no_file_points_outside_the_repository():
    banned = ["../" + "shared", "DESIGN" + ".md", "STYLE" + ".md", "SEED" + "_ERRATA"]
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    hits = []
    for name in files:
        path = ROOT / name
        if path.suffix == ".png" or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        hits += [f"{name}: {b}" for b in banned if b in text]
    assert hits == []


# -- in the browser ---------------------------------------------------------------------------

# (screenshot name, page, element to scroll to before the screenshot)
BROWSER_PAGES = [
    ("index", "index.html", None),
    (
        "api-activations",
        "api/generated/dlref.activations.html",
        "[id='dlref.activations.softplus']",
    ),
    ("questions", "questions.html", "#q-padding-stride"),
    ("notebook-03", "notebooks/03_convolution.html", "img"),
    ("kernels", "kernels.html", "#implicit-gemm-in-pallas"),
]

_MATH_STATE = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const math = [...document.querySelectorAll('.math')];
  const unrendered = math.filter(el => !el.querySelector('mjx-container')).length;
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-assistive-mml, textarea')
       .forEach(el => el.remove());
  const text = clone.textContent;
  const raw = ['\\\\frac', '\\\\(', '\\\\[', '\\\\lfloor', '\\\\sum', '$$']
       .filter(s => text.includes(s));
  return {math: math.length, rendered: document.querySelectorAll('mjx-container').length,
          unrendered, raw};
}"""

_IMAGES = """async () => {
  const imgs = [...document.images];
  imgs.forEach(img => { img.loading = 'eager'; });
  await Promise.all(imgs.map(img => img.complete ? null :
      new Promise(done => { img.onload = img.onerror = done; })));
  return imgs.map(img => ({src: img.getAttribute('src'),
                           ok: img.complete && img.naturalWidth > 0}));
}"""


def test_pages_in_headless_chromium(built):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(
            f"LOUD SKIP: {CHROMIUM} is missing, so the site was not checked in a browser. "
            "Install Debian's chromium (`apt-get update && apt-get install -y chromium`; "
            "`make browser` does it as root) and rerun."
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    start = time.perf_counter()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            for name, rel, focus in BROWSER_PAGES:
                problems += _check_page(context, built, name, rel, focus)
        finally:
            browser.close()
    seconds = time.perf_counter() - start
    print(f"[docs] browser check of {len(BROWSER_PAGES)} pages took {seconds:.1f} s")
    assert problems == [], "\n".join(problems)


def _check_page(context, built: pathlib.Path, name: str, rel: str, focus: str | None) -> list[str]:
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url} ({r.failure})"))

    def offline(route):
        if route.request.url.startswith(("file:", "data:", "blob:", "about:")):
            route.continue_()
        else:
            errors.append(f"network request: {route.request.url}")
            route.abort()

    page.route("**/*", offline)
    path = built / rel
    page.goto(path.as_uri(), wait_until="load")
    math = page.evaluate(_MATH_STATE)
    images = page.evaluate(_IMAGES)
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
    if focus:
        page.locator(focus).first.scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -60)")
        page.wait_for_timeout(150)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.close()

    problems = [f"{rel}: {e}" for e in errors]
    if math["unrendered"]:
        problems.append(f"{rel}: {math['unrendered']} of {math['math']} formulas not typeset")
    if math["raw"]:
        problems.append(f"{rel}: raw TeX visible: {math['raw']}")
    if rel.startswith(("api/", "questions")) and math["rendered"] == 0:
        problems.append(f"{rel}: no typeset formula (MathJax did not run)")
    problems += [f"{rel}: image {i['src']} did not load" for i in images if not i["ok"]]
    if rel.startswith("notebooks/") and not images:
        problems.append(f"{rel}: a notebook page without its plots")
    for url in hrefs:
        if url.startswith("file:") and (why := _broken(path, url)):
            problems.append(f"{rel}: link {why}")
    return problems
