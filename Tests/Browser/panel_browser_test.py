#!/usr/bin/python3
"""billing-panel in a real browser (Debian's chromium and chromedriver, Selenium).

Run by PanelBrowserTests (Tests/BillingServerTests), which starts billingd and
billing-panel on loopback and provisions the account first. Environment:

  PANEL_URL        the panel, e.g. http://127.0.0.1:40123
  ACCOUNT          the account to sign in as (two payers: "Jane Doe" and
                   "Acme <Ltd> & Co"; one renewable service; one migration order)
  MIGRATION_ORDER  that migration order's id
  SCREENSHOTS      a folder for a screenshot of each page

Every wait is for a state, never a fixed time; the bound is generous (a loaded
machine is slow, not wrong). Exits 0 when every step passed; otherwise prints
the step, what the page showed, and exits 1.
"""
import os
import sys
import traceback

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

PANEL = os.environ["PANEL_URL"].rstrip("/")
ACCOUNT = os.environ["ACCOUNT"]
ORDER = os.environ["MIGRATION_ORDER"]
SHOTS = os.environ["SCREENSHOTS"]
WAIT = 120  # seconds; a bound for a loaded machine, not an expectation

step = "start"


def browser(javascript=True):
    options = webdriver.ChromeOptions()
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     "--disable-gpu", "--no-first-run", "--disable-extensions"]:
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(WAIT)
    return driver


def until(driver, what, condition):
    """Waits for a state. A check that fails because the page is being
    replaced under it (a stale element, chromedriver's "node does not belong
    to the document", a script run while the page changes) means "not yet":
    the wait goes on, and a state that never comes fails as a timeout naming
    the step."""
    global step
    step = what
    return WebDriverWait(driver, WAIT, poll_frequency=0.1,
                         ignored_exceptions=[WebDriverException]).until(lambda d: condition(d))


def press(driver, element):
    """Clicks something that sends a form or follows a link, and waits until
    the next page replaced this one (a check made right after the click could
    still read the old page). The old page's window carries a mark; the new
    page's does not. Element handles are not used across the navigation:
    chromedriver then fails in ways of its own ("node does not belong to the
    document") rather than as a stale element."""
    driver.execute_script("window.pressedBeforeThisPage = true;")
    element.click()
    until(driver, step, lambda d: d.execute_script(
        "return document.readyState === 'complete' && !window.pressedBeforeThisPage;"))


def shot(driver, name):
    driver.save_screenshot(os.path.join(SHOTS, name + ".png"))


def text(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


def sign_in(driver):
    global step
    step = "sign-in refuses an unknown account"
    driver.get(PANEL + "/")
    until(driver, "the sign-in page", lambda d: d.current_url.endswith("/signin"))
    shot(driver, "signin")
    driver.find_element(By.ID, "account").send_keys("no-such-account")
    press(driver, driver.find_element(By.CSS_SELECTOR, "main button[type=submit]"))
    until(driver, "the unknown account's message", lambda d: "no account no-such-account" in text(d, "#account-error"))
    field = driver.find_element(By.ID, "account")
    field.clear()
    field.send_keys(ACCOUNT)
    press(driver, driver.find_element(By.CSS_SELECTOR, "main button[type=submit]"))
    until(driver, "the top-up page after sign-in", lambda d: d.current_url.endswith("/topup"))
    assert ACCOUNT in text(driver, "#account")


def shown_payer(driver):
    """The payer whose methods are shown (the others' are hidden)."""
    groups = driver.find_elements(By.CSS_SELECTOR, "[data-payer-options]:not([hidden])")
    return groups[0].get_attribute("data-payer-options") if len(groups) == 1 else None


def visible_methods(driver):
    return driver.find_elements(By.CSS_SELECTOR, "[data-payer-options]:not([hidden]) input[value^='method:']")


def payment_rows(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#payments tbody tr")


def history_count(driver):
    driver.get(PANEL + "/history")
    until(driver, "the history page", lambda d: d.find_elements(By.ID, "history"))
    return len(payment_rows(driver))


def whole_top_up(driver):
    """Preset, payer, save, Sandbox, Pay; the history turns Paid without a reload."""
    global step
    step = "the top-up page shows the seed's elements"
    driver.get(PANEL + "/topup")
    presets = [b.text for b in driver.find_elements(By.CSS_SELECTOR, ".presets button")]
    assert presets == ["100.00 USD", "200.00 USD", "500.00 USD", "1000.00 USD"], presets
    assert "From 0.50 USD to 15000.00 USD." in text(driver, "#amount-hint")
    payers = [o.text for o in Select(driver.find_element(By.ID, "payer")).options]
    # Escaped, not markup: the payer's name shows its angle brackets.
    assert payers == ["Jane Doe <jane@example.com>", "Acme <Ltd> & Co <billing@acme.test>"], payers
    assert driver.find_elements(By.ID, "option-invoice"), "no Invoice option"
    assert driver.find_elements(By.ID, "option-system-sandbox"), "no Sandbox option"
    assert not driver.find_elements(By.CSS_SELECTOR, "input[value^='method:']"), "a saved method before any"
    assert driver.find_element(By.CSS_SELECTOR, ".presets button").get_attribute("type") == "submit"

    step = "pick a preset"
    driver.find_element(By.CSS_SELECTOR, ".presets button[data-amount='200.00']").click()
    assert driver.find_element(By.ID, "amount").get_attribute("value") == "200.00"
    assert driver.current_url.endswith("/topup"), "the preset sent the form"

    step = "choose the second payer (its methods are shown in place; the amount stays)"
    select = Select(driver.find_element(By.ID, "payer"))
    second = select.options[1].get_attribute("value")
    first = select.options[0].get_attribute("value")
    select.select_by_index(1)
    until(driver, "the second payer's methods", lambda d: shown_payer(d) == second)
    assert driver.find_element(By.ID, "amount").get_attribute("value") == "200.00"
    Select(driver.find_element(By.ID, "payer")).select_by_index(0)
    until(driver, "the first payer's methods", lambda d: shown_payer(d) == first)
    assert driver.find_element(By.ID, "amount").get_attribute("value") == "200.00"

    step = "choose Sandbox, tick save, submit"
    driver.find_element(By.ID, "option-system-sandbox").click()
    driver.find_element(By.ID, "save-method").click()
    shot(driver, "topup")
    top_up_page = driver.current_window_handle
    press(driver, driver.find_element(By.ID, "submit"))
    until(driver, "the sandbox's page", lambda d: "Sandbox payment" in d.title and "200.00 USD" in d.page_source)
    shot(driver, "sandbox")

    step = "the history in another tab shows the payment New"
    driver.switch_to.new_window("tab")
    history_tab = driver.current_window_handle
    driver.get(PANEL + "/history")
    rows = payment_rows(driver)
    assert len(rows) == 1, len(rows)
    row = rows[0]
    payment = row.get_attribute("id")
    assert row.get_attribute("data-rendered-status") == "new", row.get_attribute("data-rendered-status")
    until(driver, "the live stream to open",
          lambda d: d.find_element(By.ID, "history").get_attribute("data-live") == "on")
    driver.execute_script("window.notReloaded = 42;")

    step = "press Pay on the sandbox's page"
    driver.switch_to.window(top_up_page)
    press(driver, driver.find_element(By.CSS_SELECTOR, "form[action$='/approve'] button"))
    until(driver, "the way back to the history", lambda d: "/history" in d.current_url)
    until(driver, "Paid on the page the person returned to",
          lambda d: d.find_element(By.CSS_SELECTOR, "#" + payment + " [data-status]").text == "Paid")

    step = "the other tab turned Paid live, without a reload"
    driver.switch_to.window(history_tab)
    until(driver, "Paid, live", lambda d: d.find_element(By.CSS_SELECTOR, "#" + payment + " [data-status]").text == "Paid")
    assert driver.execute_script("return window.notReloaded;") == 42, "the page was reloaded"
    assert driver.find_element(By.ID, payment).get_attribute("data-rendered-status") == "new"
    until(driver, "the header's balance, live", lambda d: text(d, "#balance") == "200.00 USD")
    shot(driver, "history")
    driver.close()
    driver.switch_to.window(top_up_page)
    return payment


def saved_method_top_up(driver):
    """The method saved with the first top-up is pre-selected and charged at once."""
    global step
    step = "the saved method is offered and pre-selected"
    driver.get(PANEL + "/topup")
    saved = visible_methods(driver)
    assert len(saved) == 1, len(saved)
    assert saved[0].is_selected(), "the default saved method is not pre-selected"
    amount = driver.find_element(By.ID, "amount")
    amount.send_keys("25")
    press(driver, driver.find_element(By.ID, "submit"))
    until(driver, "the history with the new payment", lambda d: "/history?payment=" in d.current_url)
    payment = "payment-" + driver.current_url.split("payment=")[1]
    until(driver, "the saved-method payment Paid",
          lambda d: d.find_element(By.CSS_SELECTOR, "#" + payment + " [data-status]").text == "Paid")
    until(driver, "the balance after it", lambda d: text(d, "#balance") == "225.00 USD")


def declined_top_up(driver):
    """Declined at the payment system: Cancelled, with the error notification."""
    global step
    step = "a top-up declined on the sandbox's page"
    driver.get(PANEL + "/topup")
    driver.find_element(By.ID, "amount").send_keys("15")
    driver.find_element(By.ID, "option-system-sandbox").click()
    press(driver, driver.find_element(By.ID, "submit"))
    until(driver, "the sandbox's page", lambda d: "Sandbox payment" in d.title)
    press(driver, driver.find_element(By.CSS_SELECTOR, "form[action$='/decline'] button"))
    until(driver, "the way back to the history", lambda d: "/history" in d.current_url)
    until(driver, "the newest payment Cancelled",
          lambda d: payment_rows(d)[0].find_element(By.CSS_SELECTOR, "[data-status]").text == "Cancelled")
    until(driver, "its error notification",
          lambda d: "declined" in payment_rows(d)[0].find_element(By.CSS_SELECTOR, "[data-details]").text.lower())
    details = payment_rows(driver)[0].find_element(By.CSS_SELECTOR, "[data-details]")
    assert "error" in (details.get_attribute("class") or ""), details.get_attribute("class")
    shot(driver, "history-declined")
    step = "the decline stays after a reload (the notification comes from billingd, not the page)"
    driver.refresh()
    assert "declined" in payment_rows(driver)[0].find_element(By.CSS_SELECTOR, "[data-details]").text.lower()


def limits(driver):
    """Amounts outside the limits are refused with the field's message; nothing is created."""
    global step
    before = history_count(driver)
    for typed, message in [("0.49", "must be from 0.50 USD to 15000.00 USD"),
                           ("15000.01", "must be from 0.50 USD to 15000.00 USD"),
                           ("ten", "Enter an amount like 100 or 100.50"),
                           ("1.001", "Enter an amount like 100 or 100.50")]:
        step = "the amount %s is refused" % typed
        driver.get(PANEL + "/topup")
        driver.find_element(By.ID, "amount").send_keys(typed)
        driver.find_element(By.ID, "option-invoice").click()
        press(driver, driver.find_element(By.ID, "submit"))
        until(driver, "the amount's message", lambda d: d.find_elements(By.ID, "amount-error"))
        assert message in text(driver, "#amount-error"), text(driver, "#amount-error")
        field = driver.find_element(By.ID, "amount")
        assert field.get_attribute("aria-invalid") == "true"
        assert "amount-error" in field.get_attribute("aria-describedby")
        assert field.get_attribute("value") == typed
    shot(driver, "topup-limits")
    step = "no method chosen is refused"
    driver.get(PANEL + "/topup")
    driver.find_element(By.ID, "amount").send_keys("10")
    # The pre-selected saved method is unticked by choosing none: remove the choice.
    driver.execute_script("document.querySelectorAll('input[name=option]').forEach(function(r){r.checked=false;r.required=false;});")
    press(driver, driver.find_element(By.ID, "submit"))
    until(driver, "the method's message", lambda d: d.find_elements(By.ID, "option-error"))
    assert "Choose a payment method" in text(driver, "#option-error")
    assert history_count(driver) == before, "a refused amount created a payment"


def renewal(driver):
    global step
    step = "renew a service from the balance"
    driver.get(PANEL + "/renewals")
    field = driver.find_element(By.CSS_SELECTOR, "input[name^='periods[']")
    field.clear()
    field.send_keys("2")
    press(driver, driver.find_element(By.ID, "quote"))
    until(driver, "the quote", lambda d: d.find_elements(By.ID, "quote-total"))
    assert text(driver, "#quote-total") == "20.00 USD", text(driver, "#quote-total")
    assert driver.find_element(By.ID, "option-balance").is_selected()
    shot(driver, "renewals")
    press(driver, driver.find_element(By.ID, "renew"))
    until(driver, "the completed order", lambda d: d.find_elements(By.ID, "renewal-result"))
    assert "completed" in text(driver, "#renewal-result"), text(driver, "#renewal-result")
    until(driver, "the balance after it", lambda d: text(d, "#balance") == "205.00 USD")


def migration(driver):
    global step
    step = "another account's order or a made-up one reads as none"
    driver.get(PANEL + "/migration?order=mo_nothing_here")
    assert "There is no migration order" in text(driver, "#form-error")
    step = "pay for a migration's server from the balance"
    driver.get(PANEL + "/migration")
    driver.find_element(By.ID, "order").send_keys(ORDER)
    press(driver, driver.find_element(By.CSS_SELECTOR, "#open-order button"))
    until(driver, "the order", lambda d: d.find_elements(By.ID, "server-price"))
    assert text(driver, "#server-price") == "5.00 USD"
    shot(driver, "migration")
    press(driver, driver.find_element(By.ID, "pay-migration"))
    until(driver, "the order Paid", lambda d: "Paid on" in text(d, "#order-state"))
    until(driver, "the balance after it", lambda d: text(d, "#balance") == "200.00 USD")


def history_filters(driver):
    global step
    step = "the history's filters"
    driver.get(PANEL + "/history?status=cancelled")
    rows = payment_rows(driver)
    assert len(rows) == 1 and rows[0].get_attribute("data-status") == "cancelled", len(rows)
    driver.get(PANEL + "/history?purpose=renewal")
    assert driver.find_elements(By.ID, "no-payments"), "a balance renewal has no payment"
    driver.get(PANEL + "/history?from=2000-01-01&to=2000-12-31")
    assert driver.find_elements(By.ID, "no-payments")
    driver.get(PANEL + "/history?from=not-a-date")
    assert "must be a date" in text(driver, "#form-error")
    driver.get(PANEL + "/history?status=paid")
    assert all(r.get_attribute("data-status") == "paid" for r in payment_rows(driver))


def without_javascript():
    """The same forms work with scripts off: presets and the payer's button send
    the form back, and the payer shown is always the payer charged."""
    global step
    driver = browser(javascript=False)
    try:
        sign_in(driver)
        before = history_count(driver)
        driver.get(PANEL + "/topup")
        step = "without JavaScript: a preset"
        press(driver, driver.find_element(By.CSS_SELECTOR, ".presets button[data-amount='500.00']"))
        until(driver, "the amount from the preset",
              lambda d: d.find_element(By.ID, "amount").get_attribute("value") == "500.00")

        step = "without JavaScript: another payer chosen, the first payer's card still ticked, Top up"
        assert len(visible_methods(driver)) == 1 and visible_methods(driver)[0].is_selected()
        Select(driver.find_element(By.ID, "payer")).select_by_index(1)
        press(driver, driver.find_element(By.ID, "submit"))
        until(driver, "the method's message", lambda d: d.find_elements(By.ID, "option-error"))
        assert "Choose one of the payment methods shown" in text(driver, "#option-error")
        assert Select(driver.find_element(By.ID, "payer")).first_selected_option.text.startswith("Acme")
        assert not visible_methods(driver), "the first payer's card is shown for the second"
        assert driver.find_element(By.ID, "amount").get_attribute("value") == "500.00"
        assert history_count(driver) == before, "a card of another payer was charged"

        step = "without JavaScript: the payer's button shows its methods and keeps what was typed"
        driver.get(PANEL + "/topup")
        driver.find_element(By.ID, "amount").send_keys("42.50")
        Select(driver.find_element(By.ID, "payer")).select_by_index(1)
        press(driver, driver.find_element(By.ID, "show-payer"))
        until(driver, "the second payer's page",
              lambda d: Select(d.find_element(By.ID, "payer")).first_selected_option.text.startswith("Acme"))
        assert driver.find_element(By.ID, "amount").get_attribute("value") == "42.50"
        assert not visible_methods(driver)

        step = "without JavaScript: an invoice for the payer shown"
        driver.find_element(By.ID, "option-invoice").click()
        press(driver, driver.find_element(By.ID, "submit"))
        until(driver, "the history with the invoice", lambda d: "/history?payment=" in d.current_url)
        row = payment_rows(driver)[0]
        assert row.find_element(By.CSS_SELECTOR, "[data-status]").text == "New"
        assert "Invoice" in row.text and "Waiting for the bank transfer" in row.text, row.text
        assert "Acme" in row.text and "42.50 USD" in row.text, row.text
    finally:
        driver.quit()


def forged_post(driver):
    """POSTs without the session's CSRF token, or with another, change nothing."""
    global step
    step = "forged POSTs are refused"
    before = history_count(driver)
    for path, body in [("/topup", "amount=100&option=invoice&csrf=0000"),
                       ("/topup", "amount=100&option=invoice"),
                       ("/renewals", "option=balance&csrf=0000"),
                       ("/migration/pay", "order=" + ORDER + "&option=balance&csrf=0000")]:
        status = driver.execute_async_script(
            "var done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {method: 'POST', body: arguments[1],"
            " headers: {'Content-Type': 'application/x-www-form-urlencoded'}})"
            ".then(function (r) { done(r.status); }, function (e) { done(String(e)); });",
            path, body)
        assert status == 403, (path, status)
    assert history_count(driver) == before, "a forged POST created a payment"


def main():
    driver = browser()
    try:
        sign_in(driver)
        whole_top_up(driver)
        saved_method_top_up(driver)
        declined_top_up(driver)
        limits(driver)
        renewal(driver)
        migration(driver)
        history_filters(driver)
        forged_post(driver)
        driver.get(PANEL + "/history")
        shot(driver, "history-all")
    except Exception:
        print("FAILED at: %s" % step)
        traceback.print_exc()
        try:
            print("page: %s\n%s" % (driver.current_url, driver.find_element(By.TAG_NAME, "main").text[:3000]))
            shot(driver, "failure")
        except Exception:
            pass
        driver.quit()
        sys.exit(1)
    driver.quit()
    try:
        without_javascript()
    except Exception:
        print("FAILED at: %s" % step)
        traceback.print_exc()
        sys.exit(1)
    print("browser test passed")


if __name__ == "__main__":
    main()
