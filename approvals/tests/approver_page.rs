//! The approvers' page in headless Chromium (driven through chromedriver): an approver signs
//! in with their token, sees the pending ticket, opens it, reads the masked excerpt (shown as
//! text, never as markup), is stopped when approving without a reason, then approves; a
//! second ticket is denied. The decisions are checked through the API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
use fantoccini::Locator;
use std::time::Duration;
use support::browser::{browser, click, text_when, type_into, Driver};
use support::*;

fn open_ticket(svc: &Running, who: &str, excerpt: &str) -> String {
    let digest = format!("{:0>64}", who.len() * 7 + excerpt.len());
    svc.open(&ticket_request(&digest, who, excerpt, 1))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_approver_reviews_the_masked_prompt_and_decides_in_the_browser() {
    let db = Db::sqlite("approver-page");
    let svc = Running::start(&db, Some(FILTER_KEY), |_| {});
    let hostile = "Wire transfer for [US_SSN] <img src=x onerror=\"document.title='owned'\">";
    let first = open_ticket(&svc, "analyst-7", hostile);
    let second = open_ticket(&svc, "analyst-8", "Wire transfer to a new beneficiary");
    let driver = Driver::start();
    let officer = token("officer-1", &["risk-officers"]);
    let base = svc.url("/");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (first_id, second_id, officer_token) = (first.clone(), second.clone(), officer.clone());
    rt.block_on(async move {
        let (first, second, officer) = (first_id, second_id, officer_token);
        let c = browser(&driver).await;
        c.goto(&base).await.unwrap();
        type_into(&c, Locator::Id("token"), &officer).await;
        click(&c, Locator::Id("signin")).await;
        let row = c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(&format!("tr[data-id='{first}']")))
            .await
            .unwrap();
        assert!(row.text().await.unwrap().contains("analyst-7@bank.test"));
        assert_eq!(
            c.find_all(Locator::Css("tr.ticket")).await.unwrap().len(),
            2
        );
        row.click().await.unwrap();
        let excerpt = c
            .wait()
            .for_element(Locator::Id("d-excerpt"))
            .await
            .unwrap();
        assert_eq!(
            text_when(&excerpt, |t| !t.is_empty()).await,
            hostile,
            "the excerpt is shown as text"
        );
        assert!(c
            .find_all(Locator::Css("#d-excerpt img"))
            .await
            .unwrap()
            .is_empty());
        assert_ne!(c.title().await.unwrap(), "owned");
        // No reason, no decision.
        click(&c, Locator::Id("approve")).await;
        let message = c.find(Locator::Id("message")).await.unwrap();
        assert!(message.text().await.unwrap().contains("Give a reason"));
        type_into(&c, Locator::Id("reason"), "client confirmed by call-back").await;
        click(&c, Locator::Id("approve")).await;
        assert_eq!(
            text_when(&message, |t| t.contains("approved")).await,
            format!("Ticket {first} approved.")
        );
        // The history on the page shows the decision.
        let history = c
            .find(Locator::Id("events"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            history.contains("officer-1@bank.test")
                && history.contains("client confirmed by call-back"),
            "{history}"
        );
        // The second ticket, denied.
        c.wait()
            .for_element(Locator::Css(&format!("tr[data-id='{second}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let shown = c.find(Locator::Id("d-id")).await.unwrap();
        assert_eq!(text_when(&shown, |t| t == second).await, second);
        type_into(&c, Locator::Id("reason"), "beneficiary not verified").await;
        click(&c, Locator::Id("deny")).await;
        assert_eq!(
            text_when(&message, |t| t.contains("denied")).await,
            format!("Ticket {second} denied.")
        );
        c.close().await.unwrap();
    });
    let (_, a) = svc.call("GET", &format!("/v1/tickets/{first}"), &officer, None);
    assert_eq!(
        (
            a["ticket"]["status"].as_str(),
            a["ticket"]["approver"].as_str()
        ),
        (Some("approved"), Some("officer-1@bank.test"))
    );
    assert_eq!(a["ticket"]["reason"], "client confirmed by call-back");
    let (_, d) = svc.call("GET", &format!("/v1/tickets/{second}"), &officer, None);
    assert_eq!(d["ticket"]["status"], "denied");
}
