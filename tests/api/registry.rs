//! The county's register: imported as CSV (UTF-8 or GB18030), refused whole when a row is wrong,
//! read back a page at a time as each worker's roster, and what changed since a version.

use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{TestApp, detail_paths, error_code, spawn_app};

const PATH: &str = "/api/v1/forms/labour-survey/registry";

fn resident_id(first17: &str) -> String {
    survey_server::forms::formats::complete_resident_id(first17).expect("17 digits")
}

/// A register row: household, place and one person (born 1983-07-08; odd serial for men).
fn row(household: &str, township: &str, name: &str, serial: u32, gender: &str) -> String {
    let id = resident_id(&format!("452223{}{serial:03}", "19830708"));
    format!("{household},{township},那塘村,{name},{id},{gender},1983-07-08\r\n")
}

const HEADER: &str = "household_id,township,village,name,id_number,gender,birth_date\r\n";

/// Three households of 思林镇 and one of 平马镇; genders by code or by label.
fn register() -> String {
    [
        HEADER.to_owned(),
        row("4510220001", "思林镇", "韦秀英", 2, "female"),
        row("4510220001", "思林镇", "黄志强", 3, "男"),
        row("4510220002", "思林镇", "农美兰", 4, "女"),
        row("4510220003", "思林镇", "陆建国", 5, "male"),
        row("4510220004", "平马镇", "罗春花", 6, "female"),
    ]
    .concat()
}

async fn put(app: &TestApp, token: &str, content_type: &str, body: Vec<u8>) -> Response {
    app.client
        .put(app.url(PATH))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn roster(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.get_as(token, &format!("{PATH}{query}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn households(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["household_id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_register_is_imported_and_read_back_as_each_worker_s_roster() {
    let app = spawn_app().await;
    let refused = put(&app, &app.token, "text/csv", register().into_bytes()).await;
    assert_eq!(error_code(refused).await.1, "forbidden");
    let imported = put(
        &app,
        &app.admin_token,
        "text/csv; charset=utf-8",
        register().into_bytes(),
    )
    .await;
    assert_eq!(imported.status(), 200);
    let imported: Value = imported.json().await.unwrap();
    assert_eq!(
        (imported["households"].clone(), imported["members"].clone()),
        (json!(4), json!(5))
    );

    let all = roster(&app, &app.admin_token, "").await;
    assert_eq!(all["version"], imported["version"]);
    assert_eq!(
        households(&all),
        ["4510220001", "4510220002", "4510220003", "4510220004"]
    );
    let first = &all["items"][0];
    assert_eq!(first["township"], "思林镇");
    assert_eq!(
        first["members"][1]["gender"], "male",
        "a label is read as its code"
    );
    assert_eq!(first["members"][0]["name"], "韦秀英");

    // A worker of 平马镇 sees their one household; pages follow the cursor.
    let pingma = app
        .user("fw-pingma", "field_worker", Some(&["平马镇"]))
        .await;
    assert_eq!(households(&roster(&app, &pingma, "").await), ["4510220004"]);
    let page1 = roster(&app, &app.admin_token, "?limit=3").await;
    assert_eq!(households(&page1).len(), 3);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = roster(&app, &app.admin_token, &format!("?limit=3&cursor={cursor}")).await;
    assert_eq!(households(&page2), ["4510220004"]);
    assert!(page2["next_cursor"].is_null());

    let trail = app
        .get_json_as(&app.admin_token, "/api/v1/audit?action=registry_imported")
        .await;
    assert_eq!(trail["items"][0]["target"], "registry:labour-survey");
}

#[tokio::test]
async fn a_government_export_in_gb18030_is_read_with_or_without_its_charset() {
    let app = spawn_app().await;
    let text = register();
    let (bytes, _, _) = encoding_rs::GB18030.encode(&text);
    for content_type in ["text/csv", "text/csv; charset=GBK"] {
        let imported = put(&app, &app.admin_token, content_type, bytes.to_vec()).await;
        assert_eq!(
            imported.status(),
            200,
            "{content_type}: {}",
            imported.text().await.unwrap()
        );
    }
    let all = roster(&app, &app.admin_token, "").await;
    assert_eq!(all["items"][0]["members"][0]["name"], "韦秀英");
}

#[tokio::test]
async fn a_register_with_a_bad_row_is_refused_whole_and_the_one_before_stays() {
    let app = spawn_app().await;
    assert_eq!(
        put(&app, &app.admin_token, "text/csv", register().into_bytes())
            .await
            .status(),
        200
    );
    let before = roster(&app, &app.admin_token, "").await;

    // A person whose ID number's check character is wrong.
    let good = row("4510220005", "思林镇", "蒙小燕", 8, "female");
    let mut cells: Vec<String> = good.split(',').map(str::to_owned).collect();
    let id = &mut cells[4];
    let last = if id.ends_with('1') { "2" } else { "1" };
    id.replace_range(17.., last);
    let wrong_check = cells.join(",");
    let broken = [
        register(),
        wrong_check,                                        // line 7: check digit
        row("4510220006", "思林镇", "韦秀英", 2, "female"), // line 8: the same person as line 2
        row("4510220001", "平马镇", "覃海", 11, "male"),    // line 9: household 1 elsewhere
        row("4510220007", "思林镇", "黄丽", 12, "male"),    // line 10: an even serial is a woman
    ]
    .concat();
    let refused = put(&app, &app.admin_token, "text/csv", broken.into_bytes()).await;
    let (status, code, error) = error_code(refused).await;
    assert_eq!((status, code.as_str()), (422, "registry_invalid"));
    assert_eq!(
        detail_paths(&error),
        [
            "/line/7/id_number",
            "/line/8/id_number",
            "/line/9/household_id",
            "/line/10/gender"
        ],
        "{error}"
    );
    assert_eq!(roster(&app, &app.admin_token, "").await, before);

    let unknown = HEADER.replace("birth_date\r\n", "birth_date,shoe_size\r\n");
    let refused = put(&app, &app.admin_token, "text/csv", unknown.into_bytes()).await;
    let (_, code, error) = error_code(refused).await;
    assert_eq!(code, "registry_invalid");
    assert_eq!(error["details"][0]["path"], "/line/1/shoe_size");
    let json = put(&app, &app.admin_token, "application/json", b"{}".to_vec()).await;
    assert_eq!(error_code(json).await.0, 415);
}

#[tokio::test]
async fn a_phone_catches_up_with_what_changed_since_its_version() {
    let app = spawn_app().await;
    let first: Value = put(&app, &app.admin_token, "text/csv", register().into_bytes())
        .await
        .json()
        .await
        .unwrap();
    let version = first["version"].as_u64().unwrap();
    // Household 2 gains a person, household 3 leaves the register, household 5 joins.
    let next = [
        HEADER.to_owned(),
        row("4510220001", "思林镇", "韦秀英", 2, "female"),
        row("4510220001", "思林镇", "黄志强", 3, "男"),
        row("4510220002", "思林镇", "农美兰", 4, "女"),
        row("4510220002", "思林镇", "农小军", 7, "male"),
        row("4510220004", "平马镇", "罗春花", 6, "female"),
        row("4510220005", "思林镇", "蒙小燕", 8, "female"),
    ]
    .concat();
    let second: Value = put(&app, &app.admin_token, "text/csv", next.into_bytes())
        .await
        .json()
        .await
        .unwrap();
    assert!(second["version"].as_u64().unwrap() > version);
    let changed = roster(&app, &app.admin_token, &format!("?since_version={version}")).await;
    assert_eq!(households(&changed), ["4510220002", "4510220005"]);
    assert_eq!(changed["removed"], json!(["4510220003"]));
    assert_eq!(changed["items"][0]["members"].as_array().unwrap().len(), 2);
    let nothing = roster(
        &app,
        &app.admin_token,
        &format!("?since_version={}", second["version"]),
    )
    .await;
    assert_eq!(
        (households(&nothing).len(), nothing["removed"].clone()),
        (0, json!([]))
    );
}

/// A register of the fixture's household (its three people, names as `name` gives them) and two
/// households nobody has visited.
fn surveyed_register(visit: &Value, name: impl Fn(&str) -> String) -> String {
    let household = visit["household_id"].as_str().unwrap();
    let mut csv = HEADER.to_owned();
    for person in visit["members"].as_array().unwrap() {
        csv.push_str(&format!(
            "{household},思林镇,定阳村,{},{},{},{}\r\n",
            name(person["name"].as_str().unwrap()),
            person["id_number"].as_str().unwrap(),
            person["gender"].as_str().unwrap(),
            person["birth_date"].as_str().unwrap()
        ));
    }
    csv.push_str(&row("4510220170002", "思林镇", "农美兰", 4, "女"));
    csv.push_str(&row("4510220170003", "平马镇", "罗春花", 6, "female"));
    csv
}

#[tokio::test]
async fn coverage_counts_what_the_cleaned_data_reached_of_the_register() {
    let app = spawn_app().await;
    let visit = crate::helpers::household();
    let csv = surveyed_register(&visit, |name| name.to_owned());
    assert_eq!(
        put(&app, &app.admin_token, "text/csv", csv.into_bytes())
            .await
            .status(),
        200
    );
    // The registered household, surveyed with its three people; and one the register lacks.
    assert_eq!(
        app.submit(&crate::helpers::envelope(visit.clone()))
            .await
            .status(),
        201
    );
    let mut other = visit.clone();
    other["household_id"] = json!("4510229999999");
    for (i, person) in other["members"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        let birth = person["birth_date"].as_str().unwrap().replace('-', "");
        let male = person["gender"] == "male";
        let serial = 900 + 2 * i as u32 + u32::from(male);
        person["id_number"] = json!(resident_id(&format!("452223{birth}{serial:03}")));
    }
    assert_eq!(
        app.submit(&crate::helpers::envelope(other)).await.status(),
        201
    );

    let by_township = app
        .get_json_as(&app.admin_token, "/api/v1/forms/labour-survey/coverage")
        .await;
    let group = |key: &str| {
        by_township["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["key"] == key)
            .unwrap()
            .clone()
    };
    assert_eq!(
        group("思林镇"),
        json!({"key": "思林镇", "registered_households": 2, "surveyed_households": 1,
               "registered_members": 4, "surveyed_members": 3,
               "household_coverage": 50.0, "member_coverage": 75.0})
    );
    assert_eq!(group("平马镇")["household_coverage"], 0.0);
    assert_eq!(
        by_township["total"],
        json!({"key": "total", "registered_households": 3, "surveyed_households": 1,
               "registered_members": 5, "surveyed_members": 3,
               "household_coverage": 33.33, "member_coverage": 60.0})
    );
    let by_worker = app
        .get_json_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/coverage?by=submitted_by",
        )
        .await;
    assert_eq!(
        by_worker["groups"],
        json!([{"key": "fw1", "registered_households": null, "surveyed_households": 1,
                "registered_members": null, "surveyed_members": 3,
                "household_coverage": null, "member_coverage": null}])
    );
    let csv = app
        .get_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/coverage.csv?by=township",
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.contains("思林镇,2,1,4,3,50.00,75.00"), "{csv}");
    assert!(csv.contains("total,3,1,5,3,33.33,60.00"), "{csv}");

    let missing = app
        .get_json_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/coverage/missing?township=思林镇",
        )
        .await;
    assert_eq!(households(&missing), ["4510220170002"]);
    let all_missing = app
        .get_json_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/coverage/missing",
        )
        .await;
    assert_eq!(households(&all_missing), ["4510220170002", "4510220170003"]);
    let supervisor = app
        .user("sup-pingma", "supervisor", Some(&["平马镇"]))
        .await;
    let theirs = app
        .get_json_as(&supervisor, "/api/v1/forms/labour-survey/coverage/missing")
        .await;
    assert_eq!(households(&theirs), ["4510220170003"]);
    let field_worker = app.get("/api/v1/forms/labour-survey/coverage").await;
    assert_eq!(error_code(field_worker).await.1, "forbidden");
}

#[tokio::test]
async fn next_round_s_register_is_this_round_s_cleaned_data() {
    let app = spawn_app().await;
    let visit = crate::helpers::household();
    assert_eq!(
        app.submit(&crate::helpers::envelope(visit.clone()))
            .await
            .status(),
        201
    );
    let mut schema: Value =
        serde_json::from_str(include_str!("../../schemas/labour-survey.json")).unwrap();
    schema["x-form-id"] = json!("labour-survey-2027");
    let published = app
        .post_json_as(
            &app.admin_token,
            "/api/v1/forms",
            &json!({"id": "labour-survey-2027", "version": "1",
            "title": "2027年就业情况调查", "schema": schema}),
        )
        .await;
    assert_eq!(published.status(), 201);
    let built = app
        .client
        .post(app.url("/api/v1/forms/labour-survey-2027/registry/from-export?from=labour-survey"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(built.status(), 200, "{}", built.text().await.unwrap());
    let roster = app
        .get_json_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey-2027/registry",
        )
        .await;
    let household = &roster["items"][0];
    assert_eq!(household["household_id"], visit["household_id"]);
    assert_eq!(household["members"].as_array().unwrap().len(), 3);
    // Last round's answers prefill the next: employment, income, trainings.
    let first = &household["members"][0];
    for field in [
        "name",
        "id_number",
        "employment_status",
        "monthly_income",
        "trainings_wanted",
    ] {
        assert_eq!(first[field], visit["members"][0][field], "{field}");
    }
    // The first round keeps its own data and has no register of its own.
    let own = app.get_as(&app.admin_token, PATH).await;
    assert_eq!(error_code(own).await.1, "registry_not_found");
}

#[tokio::test]
async fn a_register_that_would_mislead_is_refused_and_phones_learn_every_way_a_household_left() {
    let app = spawn_app().await;
    let refuse = |body: String, content_type: &'static str| {
        let app = &app;
        async move {
            let answer = put(app, &app.admin_token, content_type, body.into_bytes()).await;
            let (status, code, error) = error_code(answer).await;
            assert_eq!(
                (status, code.as_str()),
                (422, "registry_invalid"),
                "{error}"
            );
            error["details"][0].clone()
        }
    };
    // Nothing but a header would wipe the register; a household needs its township.
    assert_eq!(
        refuse(HEADER.to_owned(), "text/csv").await["path"],
        "/line/2"
    );
    let placeless = format!("{HEADER}{}", row("4510220001", "", "韦秀英", 2, "female"));
    assert_eq!(
        refuse(placeless, "text/csv").await["path"],
        "/line/2/township"
    );
    let twice = format!(
        "{}{}",
        HEADER.replace("\r\n", ",name\r\n"),
        row("4510220001", "思林镇", "韦秀英", 2, "female").replace("\r\n", ",韦\r\n")
    );
    assert_eq!(refuse(twice, "text/csv").await["path"], "/line/1/name");
    // GB18030 bytes said to be UTF-8: refused, not loaded as question marks.
    let text = register();
    let (gbk, _, _) = encoding_rs::GB18030.encode(&text);
    let lie = put(
        &app,
        &app.admin_token,
        "text/csv; charset=utf-8",
        gbk.to_vec(),
    )
    .await;
    let (_, code, error) = error_code(lie).await;
    assert_eq!(code, "registry_invalid");
    assert!(
        error["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("charset"),
        "{error}"
    );
    // More people than the form takes in one household (maxItems 20).
    let crowded: String = std::iter::once(HEADER.to_owned())
        .chain((0..21).map(|i| row("4510220009", "思林镇", "韦", 2 * i, "female")))
        .collect();
    assert!(
        refuse(crowded, "text/csv").await["message"]
            .as_str()
            .unwrap()
            .contains("at most 20")
    );

    // Version a: 1, 2, 3 in 思林镇, 4 in 平马镇. Then b: 3 leaves, 2 moves to 平马镇. Then c: 3 is back.
    let versions = [
        register(),
        [
            HEADER.to_owned(),
            row("4510220001", "思林镇", "韦秀英", 2, "female"),
            row("4510220001", "思林镇", "黄志强", 3, "男"),
            row("4510220002", "平马镇", "农美兰", 4, "女"),
            row("4510220004", "平马镇", "罗春花", 6, "female"),
        ]
        .concat(),
        [
            HEADER.to_owned(),
            row("4510220001", "思林镇", "韦秀英", 2, "female"),
            row("4510220001", "思林镇", "黄志强", 3, "男"),
            row("4510220002", "平马镇", "农美兰", 4, "女"),
            row("4510220003", "思林镇", "陆建国", 5, "male"),
            row("4510220004", "平马镇", "罗春花", 6, "female"),
        ]
        .concat(),
    ];
    let mut numbers = Vec::new();
    for body in versions {
        let answer: Value = put(&app, &app.admin_token, "text/csv", body.into_bytes())
            .await
            .json()
            .await
            .unwrap();
        numbers.push(answer["version"].as_u64().unwrap());
    }
    let siling = app
        .user("fw-siling", "field_worker", Some(&["思林镇"]))
        .await;
    let pingma = app
        .user("fw-pingma", "field_worker", Some(&["平马镇"]))
        .await;
    let since_a = format!("?since_version={}", numbers[0]);
    // 思林镇's phone: 2 moved away (removed for it), 3 came back (an item, not removed).
    let theirs = roster(&app, &siling, &since_a).await;
    assert_eq!(households(&theirs), ["4510220003"]);
    assert_eq!(theirs["removed"], json!(["4510220002"]));
    // 平马镇's phone: 2 arrived; nothing of 思林镇's comings and goings.
    let others = roster(&app, &pingma, &since_a).await;
    assert_eq!(households(&others), ["4510220002"]);
    assert_eq!(others["removed"], json!([]));

    // A cursor from before an import no longer pages: the phone starts again.
    let page = roster(&app, &app.admin_token, "?limit=2").await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        put(&app, &app.admin_token, "text/csv", register().into_bytes())
            .await
            .status(),
        200
    );
    let stale = app
        .get_as(&app.admin_token, &format!("{PATH}?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(
        error_code(stale).await,
        (
            409,
            "registry_changed".into(),
            json!({
        "code": "registry_changed",
        "message": "the register changed while you were reading it; start again from the version you have"})
        )
    );
}

#[tokio::test]
async fn a_cleaned_export_marks_the_registered_logs_what_disagrees_and_lists_who_was_missed() {
    let app = spawn_app().await;
    let visit = crate::helpers::household();
    // The register spells the first labourer's name another way.
    let first = visit["members"][0]["name"].as_str().unwrap().to_owned();
    let csv = surveyed_register(&visit, |name| {
        if name == first {
            format!("{name}妹")
        } else {
            name.to_owned()
        }
    });
    assert_eq!(
        put(&app, &app.admin_token, "text/csv", csv.into_bytes())
            .await
            .status(),
        200
    );
    assert_eq!(
        app.submit(&crate::helpers::envelope(visit.clone()))
            .await
            .status(),
        201
    );
    let zip = app
        .get_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/export.zip?bom=false",
        )
        .await
        .bytes()
        .await
        .unwrap();
    let files = crate::helpers::unzip(zip.to_vec());
    let members = crate::helpers::csv_rows(&files["members.csv"]);
    assert_eq!(members.len(), 3);
    assert!(
        members.iter().all(|m| m["_registry"] == "matched"),
        "{members:?}"
    );
    let missing = crate::helpers::csv_rows(&files["_missing.csv"]);
    let names: Vec<&str> = missing.iter().map(|m| m["name"].as_str()).collect();
    assert_eq!(names, ["农美兰", "罗春花"]);
    assert_eq!(missing[0]["household_id"], "4510220170002");
    let log = crate::helpers::csv_rows(&files["cleaning_log.csv"]);
    let differs: Vec<_> = log
        .iter()
        .filter(|l| l["action"] == "registry_differs")
        .collect();
    assert_eq!(differs.len(), 1, "{log:?}");
    assert_eq!(
        (
            differs[0]["column"].as_str(),
            differs[0]["before"].clone(),
            differs[0]["after"].clone()
        ),
        ("name", format!("{first}妹"), first.clone())
    );
    // Who was reached does not depend on the export's own filters: none of the rows is
    // approved, yet the surveyed household is not missing.
    let approved = app
        .get_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/export.zip?bom=false&status=approved",
        )
        .await
        .bytes()
        .await
        .unwrap();
    let approved = crate::helpers::unzip(approved.to_vec());
    assert_eq!(crate::helpers::csv_rows(&approved["members.csv"]).len(), 0);
    assert_eq!(crate::helpers::csv_rows(&approved["_missing.csv"]).len(), 2);
    assert!(approved["codebook.csv"].contains("members,_registry,_registry,system,matched; new"));
    // With labels, the missing are listed as the rest of the export is: titles and labels.
    let labelled = app
        .get_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/export.zip?bom=false&labels=true",
        )
        .await
        .bytes()
        .await
        .unwrap();
    let labelled =
        crate::helpers::csv_rows(&crate::helpers::unzip(labelled.to_vec())["_missing.csv"]);
    assert_eq!(
        labelled
            .iter()
            .map(|m| (m["姓名"].as_str(), m["性别"].as_str()))
            .collect::<Vec<_>>(),
        [("农美兰", "女"), ("罗春花", "女")]
    );
    // A supervisor of 平马镇 is told only of 平马镇's missed people.
    let supervisor = app.user("sup-pingma", "analyst", Some(&["平马镇"])).await;
    let theirs = app
        .get_as(
            &supervisor,
            "/api/v1/forms/labour-survey/export.zip?bom=false",
        )
        .await
        .bytes()
        .await
        .unwrap();
    let theirs = crate::helpers::csv_rows(&crate::helpers::unzip(theirs.to_vec())["_missing.csv"]);
    assert_eq!(
        theirs
            .iter()
            .map(|m| m["name"].as_str())
            .collect::<Vec<_>>(),
        ["罗春花"]
    );
}
