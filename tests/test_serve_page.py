"""``GET /``: a person types inputs into the page and sees predictions. Driven in a real headless
browser (Debian's chromium with chromedriver, through selenium), not only an HTTP client."""
from __future__ import annotations

import shutil

import pytest
from conftest import tiny_recipe
from helpers.waiting import running

pytest.importorskip("fmkit_nlp")
httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    import fmkit
    from fmkit.serve.app import create_app

    tmp = tmp_path_factory.mktemp("page")
    recipe = tiny_recipe(tmp, epochs=2)
    run = fmkit.train(recipe, run_dir=str(tmp / "reviews"))  # a run folder is served under its name
    return create_app(str(run.run_dir), backend="torch", max_items=2)


def test_the_page_is_served_offline_with_the_models_examples(app):
    with running(app) as url:
        r = httpx.get(url + "/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "<title>reviews</title>" in r.text and "one per line" in r.text
        assert "http://" not in r.text.replace(url, "") and "https://" not in r.text  # nothing fetched from elsewhere


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium (dev extra)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("no headless browser: apt-get install chromium chromium-driver (make test does it as root)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_a_person_types_texts_and_sees_a_table_of_predictions(app):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser()
    try:
        with running(app) as url:
            expected = httpx.post(url + "/v1/predict", json={"inputs": ["good great film", "awful boring plot"]}).json()
            browser.get(url + "/")
            box = browser.find_element(By.ID, "inputs")
            box.clear()
            box.send_keys("good great film\nawful boring plot")
            browser.find_element(By.ID, "predict").click()
            try:
                WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "results").is_displayed())
            except Exception:
                raise AssertionError(f"no results; error: {browser.find_element(By.ID, 'error').text!r}; "
                                     f"console: {browser.get_log('browser')}") from None
            head = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#head th")]
            rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                    for tr in browser.find_elements(By.CSS_SELECTOR, "#rows tr")]
            assert head[:2] == ["input", "label"]
            assert [r[0] for r in rows] == ["good great film", "awful boring plot"]
            assert [r[1] for r in rows] == [p["label"] for p in expected["predictions"]]
            # the server's refusal shows on the page (3 inputs, max_items 2), and the page keeps working
            box.send_keys("\na third one")
            browser.find_element(By.ID, "predict").click()
            WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "error").text)
            assert browser.find_element(By.ID, "error").text.startswith("413")
            browser.execute_script("document.getElementById('inputs').value = ''")
            browser.find_element(By.ID, "predict").click()
            WebDriverWait(browser, 30).until(lambda b: "at least one input" in b.find_element(By.ID, "error").text)
    finally:
        browser.quit()
