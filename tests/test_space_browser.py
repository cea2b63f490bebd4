"""The Space (`space/app.py`) in a real browser: headless Chromium driven by selenium samples from the released
models, plays sampled speech, encodes an upload and shows readable messages for bad input. Screenshots of each tab
go to the test's artefact folder (printed); on a failure the browser console is printed.

Run on its own with `pytest -m browser -s`. Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
them) and the `space` extra; skips when they are missing.
"""

import io
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import wave
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

pytest.importorskip("gradio")
selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "2"}
    server = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)], cwd=REPO / "space", env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if server.poll() is not None:
                pytest.fail(f"the app exited: {server.stdout.read()[-3000:]}")
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("the app did not answer within 180 s")
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("HF_VQVAE_TEST_ARTEFACTS", tmp_path_factory.mktemp("space_screenshots")))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.fixture
def browser(app_url, request):
    if not (CHROMIUM and DRIVER):
        pytest.skip(
            "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1600"):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)
    driver.get(app_url)
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#sample-button"), "the page to load")
    yield driver
    report = getattr(request.node, "rep_call", None)  # conftest's pytest_runtest_makereport
    if report is not None and report.failed:
        print("browser console:", *driver.get_log("browser"), sep="\n")
    driver.quit()


def wait_for(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def choose(driver, elem_id: str, value: str) -> None:
    """Types `value` into a Gradio dropdown and picks it."""
    box = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input")
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(value)
    time.sleep(0.3)
    box.send_keys(Keys.ENTER)
    wait_for(lambda: box.get_attribute("value") == value, f"{elem_id} to show {value!r}", 10)


def set_text(driver, elem_id: str, value: str) -> None:
    box = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} textarea, #{elem_id} input")
    box.clear()
    box.send_keys(value)


def media_source(driver, selector: str, previous: str | None = None, attribute: str = "src") -> str:
    def current():
        found = driver.find_elements(By.CSS_SELECTOR, selector)
        source = found[0].get_attribute(attribute) if found else None
        return source if source and source != previous else None

    return wait_for(current, f"{selector} to show new content")


def fetch_image(url: str) -> np.ndarray:
    with urllib.request.urlopen(url, timeout=30) as response:
        return np.asarray(PIL.Image.open(io.BytesIO(response.read())).convert("RGB"))


def error_message(driver) -> str:
    return wait_for(
        lambda: " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, ".toast-body") if e.text),
        "an error message in the page",
        30,
    )


def click(driver, elem_id: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f"#{elem_id}").click()


def test_sampling_shows_images_that_depend_on_the_seed_and_speech_with_sound(browser, artefacts):
    choose(browser, "sample-class", "cat")
    started = time.monotonic()
    click(browser, "sample-button")
    first_url = media_source(browser, "#sample-image img")
    print(f"4 CIFAR-10 samples shown {time.monotonic() - started:.2f} s after the click")
    first = fetch_image(first_url)
    assert first.std() > 10, "the sample grid is blank"
    browser.save_screenshot(str(artefacts / "sample_tab_images.png"))
    set_text(browser, "sample-seed", "1")
    click(browser, "sample-button")
    second = fetch_image(media_source(browser, "#sample-image img", previous=first_url))
    assert first.shape == second.shape and not np.array_equal(first, second), "two seeds gave the same images"

    choose(browser, "sample-model", "vqvae-fsdd")
    wait_for(
        lambda: browser.find_element(By.CSS_SELECTOR, "#sample-class input").get_attribute("value"), "digits"
    )
    choose(browser, "sample-class", "7")
    click(browser, "sample-button")
    # Gradio plays audio through a waveform player; its download link is the audio it holds.
    audio_url = media_source(browser, "#sample-audio a[download]", attribute="href")
    with urllib.request.urlopen(audio_url, timeout=30) as response:
        assert len(response.read()) > 1000, "the audio element has no content"
    browser.save_screenshot(str(artefacts / "sample_tab_speech.png"))


def test_encoding_an_upload_shows_the_reconstruction_its_codes_and_psnr(browser, artefacts, tmp_path):
    picture = np.zeros((32, 32, 3), np.uint8)
    picture[:, :16] = (200, 40, 40)
    picture[8:24, 8:24] = (30, 160, 220)
    PIL.Image.fromarray(picture).save(tmp_path / "picture.png")
    browser.find_element(By.XPATH, "//button[contains(., 'Encode') and @role='tab']").click()
    browser.find_element(By.CSS_SELECTOR, "#encode-file input[type=file]").send_keys(
        str(tmp_path / "picture.png")
    )
    time.sleep(1)
    click(browser, "encode-button")
    summary = wait_for(
        lambda: "PSNR" in (text := browser.find_element(By.CSS_SELECTOR, "#encode-summary").text) and text,
        "the PSNR",
    )
    psnr = float(summary.split("PSNR")[1].split("dB")[0])
    print(f"encode tab: {summary}")
    assert 10 < psnr < 60 and "64 codes" in summary
    media_source(browser, "#encode-grid img")
    browser.save_screenshot(str(artefacts / "encode_tab.png"))


def reload_tab(browser, tab: str) -> None:
    browser.refresh()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#sample-button"), "the page to reload")
    browser.find_element(By.XPATH, f"//button[contains(., '{tab}') and @role='tab']").click()


def write_wav(path: Path, seconds: float, rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as recording:
        recording.setnchannels(1)
        recording.setsampwidth(2)
        recording.setframerate(rate)
        samples = (np.sin(np.arange(int(seconds * rate)) * 2 * math.pi * 220 / rate) * 8000).astype(np.int16)
        recording.writeframes(samples.tobytes())


def test_bad_input_shows_a_message_and_the_app_keeps_serving(browser, tmp_path):
    set_text(browser, "sample-seed", "twelve")
    click(browser, "sample-button")
    assert "The seed must be a whole number" in error_message(browser)

    browser.find_element(By.XPATH, "//button[contains(., 'Encode') and @role='tab']").click()
    upload = browser.find_element(By.CSS_SELECTOR, "#encode-file input[type=file]")
    (tmp_path / "notes.png").write_text("not an image at all")
    upload.send_keys(str(tmp_path / "notes.png"))
    time.sleep(1)
    click(browser, "encode-button")
    assert "cannot read" in error_message(browser)

    (tmp_path / "empty.png").write_bytes(b"")
    reload_tab(browser, "Encode")
    browser.find_element(By.CSS_SELECTOR, "#encode-file input[type=file]").send_keys(
        str(tmp_path / "empty.png")
    )
    time.sleep(1)
    click(browser, "encode-button")
    assert "empty" in error_message(browser).lower()

    reload_tab(browser, "Encode")
    choose(browser, "encode-model", "vqvae-fsdd")
    write_wav(tmp_path / "long.wav", 600)
    browser.find_element(By.CSS_SELECTOR, "#encode-file input[type=file]").send_keys(
        str(tmp_path / "long.wav")
    )
    time.sleep(2)
    click(browser, "encode-button")
    assert "10.0 minutes long" in error_message(browser)

    # The app still samples afterwards.
    browser.find_element(By.XPATH, "//button[contains(., 'Sample') and @role='tab']").click()
    set_text(browser, "sample-seed", "3")
    click(browser, "sample-button")
    media_source(browser, "#sample-image img")
