//! Both roles with a keyboard only, as a clerk without a mouse or a person using a switch
//! would: Tab, Enter and typing, never a click. After each screen change the focus is on the
//! new screen's heading (or on what the change did), never on the page's body, and what comes
//! next is a few Tabs away: "agree all" is one Tab after the consent screen's heading.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use fantoccini::Client;

use crate::e2e::{enabled, session, wait_text, Driver, Terminal};
use crate::e2e_counter::{issue, COUNTER};
use crate::e2e_kiosk::kiosk_at;

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";

/// The id of the element that has the keyboard's focus ("body" when none has).
async fn focused(c: &Client) -> Result<String> {
    let id = c
        .execute(
            "const a = document.activeElement; return a && a !== document.body ? a.id : 'body';",
            vec![],
        )
        .await?;
    Ok(id.as_str().unwrap_or_default().to_owned())
}

/// Types `keys` where the focus is.
async fn keys(c: &Client, keys: &str) -> Result<()> {
    c.active_element().await?.send_keys(keys).await?;
    Ok(())
}

/// Presses Tab until the focus is on `id`; how many presses it took.
async fn tab_to(c: &Client, id: &str) -> Result<usize> {
    for presses in 1..=40 {
        keys(c, TAB).await?;
        if focused(c).await? == id {
            return Ok(presses);
        }
    }
    bail!(
        "#{id} was not reached in 40 Tabs (the focus is on #{})",
        focused(c).await?
    )
}

/// Waits until the focus is on `id` (a screen change may take a moment).
async fn focus_lands_on(c: &Client, id: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = focused(c).await?;
        if now == id {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the focus should be on #{id}, it is on #{now}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn kiosk_walk(driver: &Driver) -> Result<Vec<(String, usize)>> {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let (terminal, _spoken) = kiosk_at(3, "", &format!("http://127.0.0.1:{dead}"))?;
    let c = session(driver, &terminal).await?;
    let result = async {
        let mut tabs = Vec::new();
        wait_text(&c, "h1", "새 회원 가입").await?;
        tabs.push(("name".to_owned(), tab_to(&c, "name").await?));
        keys(&c, "김영수").await?;
        keys(&c, TAB).await?;
        focus_lands_on(&c, "birth-date").await?;
        keys(&c, "19510301").await?;
        keys(&c, TAB).await?;
        focus_lands_on(&c, "phone").await?;
        keys(&c, "01012345678").await?;
        tabs.push((
            "next-identity".to_owned(),
            tab_to(&c, "next-identity").await?,
        ));
        keys(&c, ENTER).await?;
        wait_text(&c, "#steps [aria-current=step]", "동의").await?;
        focus_lands_on(&c, "step-heading").await?;
        let agree = tab_to(&c, "agree-all").await?;
        assert_eq!(agree, 1, "agree all is the first thing after the heading");
        tabs.push(("agree-all".to_owned(), agree));
        keys(&c, ENTER).await?;
        focus_lands_on(&c, "next-consent").await?;
        keys(&c, ENTER).await?;
        wait_text(&c, "#steps [aria-current=step]", "연락처").await?;
        focus_lands_on(&c, "step-heading").await?;
        tabs.push(("enroll".to_owned(), tab_to(&c, "enroll").await?));
        keys(&c, ENTER).await?;
        wait_text(&c, "#receipt-no", "접수번호 0001").await?;
        focus_lands_on(&c, "step-heading").await?;
        tabs.push(("to-card".to_owned(), tab_to(&c, "to-card").await?));
        keys(&c, ENTER).await?;
        wait_text(&c, "#card-title", "팔팔 가입 접수증").await?;
        focus_lands_on(&c, "step-heading").await?;
        Ok::<_, anyhow::Error>(tabs)
    }
    .await;
    c.close().await?;
    result
}

async fn counter_walk(driver: &Driver) -> Result<Vec<(String, usize)>> {
    let terminal = Terminal::new(COUNTER)?;
    let token = issue(&terminal, "PP-00000002", None)?;
    let c = session(driver, &terminal).await?;
    let result = async {
        let mut tabs = Vec::new();
        wait_text(&c, "h1", "회원 조회").await?;
        // The member field has the focus from the start: the scanner types into it.
        focus_lands_on(&c, "member-no").await?;
        keys(&c, &format!("{token}{ENTER}")).await?;
        focus_lands_on(&c, "amount").await?;
        keys(&c, &format!("1500{ENTER}")).await?;
        focus_lands_on(&c, "redeem-done").await?;
        // Void it: pressed once to arm, once to confirm; the focus goes to what it did.
        tabs.push(("void-hold".to_owned(), tab_to(&c, "void-hold").await?));
        keys(&c, ENTER).await?;
        keys(&c, ENTER).await?;
        focus_lands_on(&c, "void-result").await?;
        wait_text(
            &c,
            "#void-result",
            "결제를 취소했습니다. 1,500포인트를 돌려드렸습니다.",
        )
        .await?;
        tabs.push(("redeem-next".to_owned(), tab_to(&c, "redeem-next").await?));
        keys(&c, ENTER).await?;
        focus_lands_on(&c, "redeem-heading").await?;
        Ok::<_, anyhow::Error>(tabs)
    }
    .await;
    c.close().await?;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_roles_with_a_keyboard_only() -> Result<()> {
    if !enabled("both_roles_with_a_keyboard_only") {
        return Ok(());
    }
    let driver = Driver::start()?;
    let kiosk = kiosk_walk(&driver).await?;
    let counter = counter_walk(&driver).await?;
    drop(driver);
    for (role, walk) in [("kiosk", kiosk), ("counter", counter)] {
        for (target, presses) in walk {
            eprintln!("keyboard: {role}: #{target} reached in {presses} Tab(s)");
        }
    }
    Ok(())
}
