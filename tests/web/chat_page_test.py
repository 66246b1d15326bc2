#!/usr/bin/env python3
"""End-to-end test of the chat page (GET /) in headless Chromium.

usage: chat_page_test.py URL [SCREENSHOT.png]
The page loads and names the model; a message sent streams a reply that ends with its token
count; the conversation survives a reload (localStorage); Stop ends a long reply and the page
is ready for the next message. With a second argument, a screenshot is saved there.
"""
import json
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

url = sys.argv[1].rstrip("/") + "/"
shot = sys.argv[2] if len(sys.argv) > 2 else None

opts = webdriver.ChromeOptions()
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,720"):
    opts.add_argument(a)
opts.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
wait = WebDriverWait(driver, 60)


def by_id(i):
    return driver.find_element(By.ID, i)


def set_field(i, value):
    driver.execute_script("const e = document.getElementById(arguments[0]); e.value = arguments[1];"
                          "e.dispatchEvent(new Event('change'))", i, value)


def assistants():
    return driver.find_elements(By.CSS_SELECTOR, ".msg.assistant")


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        print(driver.find_element(By.TAG_NAME, "body").get_attribute("innerHTML")[:3000])
        sys.exit(1)
    print("ok:", what)


try:
    driver.get(url)
    check("camelid" in driver.title, "the page loads")
    wait.until(lambda d: by_id("model").text not in ("", "connecting…"))
    check("unreachable" not in by_id("model").text and "?" not in by_id("model").text,
          "it names the served model: " + by_id("model").text)

    # Markdown as replies use it, with the model's text always escaped.
    html = driver.execute_script("return markdown(arguments[0])",
                                 "# T\n\n**b** and `x<y`\n\n- one\n- two\n\n```js\nif (a < b) {}\n```\n\n<img src=x onerror=alert(1)>")
    check("<h1>T</h1>" in html and "<strong>b</strong>" in html and "<code>x&lt;y</code>" in html
          and "<ul><li>one</li><li>two</li></ul>" in html and '<pre><code class="lang-js">if (a &lt; b) {}</code></pre>' in html
          and "<img" not in html, "markdown renders headings, bold, code, lists, fenced code; HTML is escaped: " + html)

    # A short reply: it streams in, and its meta line gives the token count and speed.
    driver.find_element(By.CSS_SELECTOR, "#settings summary").click()
    set_field("max_tokens", "12")
    set_field("seed", "7")
    set_field("system", "You are terse.")
    by_id("input").send_keys("Hello, camelid!", Keys.ENTER)
    wait.until(lambda d: len(assistants()) == 1 and "done" in assistants()[0].get_attribute("class"))
    reply = assistants()[0]
    check("error" not in reply.get_attribute("class"), "the reply has no error")
    check("tok/s" in reply.find_element(By.CLASS_NAME, "meta").text, "the reply ends with tokens and tok/s")
    check(driver.find_element(By.CSS_SELECTOR, ".msg.user").text == "Hello, camelid!", "the user message is shown")
    if shot:
        driver.save_screenshot(shot)

    # The conversation is kept in the browser.
    driver.refresh()
    wait.until(lambda d: len(assistants()) == 1)
    check(len(driver.find_elements(By.CSS_SELECTOR, "#convs li")) == 1, "the conversation survives a reload")

    # Stop: no token limit and a 16K context, so the reply runs until stopped.
    set_field("max_tokens", "")
    by_id("input").send_keys("Tell me a long story.", Keys.ENTER)
    wait.until(lambda d: len(assistants()) == 2 and len(assistants()[1].text) > 0)
    check(by_id("send").get_attribute("disabled") is not None, "Send is disabled while a reply streams")
    by_id("stop").click()
    wait.until(lambda d: "done" in assistants()[1].get_attribute("class"))
    check(assistants()[1].find_element(By.CLASS_NAME, "meta").text == "stopped", "Stop ends the reply")
    check(by_id("send").get_attribute("disabled") is None, "the page is ready for the next message")
    text = assistants()[1].text
    time.sleep(0.5)
    check(assistants()[1].text == text, "nothing arrives after Stop")
    for _ in range(50):  # the server notices the closed stream and frees the slot
        health = json.load(urllib.request.urlopen(url + "health"))
        if health["requests_active"] == 0:
            break
        time.sleep(0.1)
    check(health["requests_active"] == 0, "the server stops generating too")

    # A new conversation starts empty; the old one is still listed.
    by_id("new").click()
    check(len(assistants()) == 0 and len(driver.find_elements(By.CSS_SELECTOR, "#convs li")) == 2,
          "New chat starts an empty conversation")
finally:
    driver.quit()
print("chat page: all checks passed")
