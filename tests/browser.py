"""A real browser for the dashboard's tests: Debian's Chromium, headless, driven by
Selenium through Debian's chromedriver (no browser is downloaded)."""

import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DESKTOP = (1280, 900)
PHONE = (390, 844)
# Set to a directory (docs/screenshots) to keep the screenshots the tests take there.
SCREENSHOTS = os.environ.get("PCCI_SCREENSHOTS")


def missing():
    """Why no browser can run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (./scripts/setup-deps installs python3-selenium)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            return "%s is missing (./scripts/setup-deps installs chromium and chromium-driver)" % path
    return None


def start(size=DESKTOP, dark=False, arguments=()):
    """A headless Chromium; ``arguments`` are more command-line switches for it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--disable-extensions", "--window-size=%d,%d" % size) + tuple(arguments):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    if size[0] < 500:
        # Headless windows are at least 500 pixels wide: a phone's screen is emulated instead.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": True})
    if dark:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                               {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    return driver


class Screenshots:
    """Screenshots into the test's directory, and into $PCCI_SCREENSHOTS when set."""

    def __init__(self, directory):
        self.directory = str(directory)
        os.makedirs(self.directory, exist_ok=True)

    def take(self, driver, name):
        path = os.path.join(self.directory, name + ".png")
        assert driver.save_screenshot(path), "no screenshot of %s" % name
        if SCREENSHOTS:
            os.makedirs(SCREENSHOTS, exist_ok=True)
            shutil.copyfile(path, os.path.join(SCREENSHOTS, name + ".png"))
        return path


requires_browser = pytest.mark.skipif(missing() is not None, reason="no browser: %s" % missing())
