//! Rooms (contract v1.1 §8 and §14): join/leave/watch/unwatch, snapshots and
//! numbered `presence` frames, members, authorisation, limits, slow
//! watchers and the room routes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::support::{TestHub, WsClient, jwt, jwt_claims, ms, slow_reader, within};

const LIMIT: Duration = Duration::from_secs(30);
const SECRET: &str = "rooms-secret-of-at-least-32-bytes!!";
const MEMBER_FIELDS: [&str; 7] = [
    "user_id",
    "name",
    "status",
    "manual",
    "session_count",
    "page",
    "joined_at",
];

/// What a watcher knows of one room, folded from its frames; every frame is
/// checked against the contract on the way (seq 0 snapshots, contiguous
/// `presence` numbers, one change per user, seven member fields).
#[derive(Debug, Default)]
struct RoomView {
    room: String,
    seq: Option<u64>,
    members: BTreeMap<String, Value>,
    snapshots: usize,
}

impl RoomView {
    fn new(room: &str) -> Self {
        Self {
            room: room.into(),
            ..Self::default()
        }
    }

    /// Folds one frame in; false when it is not about this room.
    fn apply(&mut self, frame: &Value) -> bool {
        if frame["room"] != self.room.as_str() {
            return false;
        }
        match frame["type"].as_str() {
            Some("room") => {
                assert_eq!(frame["seq"], 0, "snapshots are seq 0: {frame}");
                self.members.clear();
                for member in frame["members"].as_array().unwrap() {
                    assert_member(member);
                    self.members
                        .insert(member["user_id"].as_str().unwrap().into(), member.clone());
                }
                self.seq = Some(0);
                self.snapshots += 1;
            }
            Some("presence") => {
                let last = self.seq.expect("a presence frame before any snapshot");
                assert_eq!(frame["seq"], last + 1, "presence frames have no gaps");
                self.seq = Some(last + 1);
                let mut users = BTreeSet::new();
                for change in frame["changes"].as_array().unwrap() {
                    let member = &change["member"];
                    assert_member(member);
                    let user = member["user_id"].as_str().unwrap().to_string();
                    assert!(users.insert(user.clone()), "one change per user: {frame}");
                    match change["event"].as_str().unwrap() {
                        "join" | "update" => {
                            self.members.insert(user, member.clone());
                        }
                        "leave" => {
                            self.members.remove(&user);
                        }
                        other => panic!("unknown event {other}"),
                    }
                }
            }
            _ => return false,
        }
        true
    }

    fn user_ids(&self) -> Vec<&str> {
        self.members.keys().map(String::as_str).collect()
    }
}

fn assert_member(member: &Value) {
    let keys: BTreeSet<&str> = member
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        MEMBER_FIELDS.into_iter().collect(),
        "a member has exactly the seven fields: {member}"
    );
}

/// The next `room` or `presence` frame about `room`.
async fn room_frame(ws: &mut WsClient, room: &str) -> Value {
    ws.recv_until(ms(5000), &format!("a frame of {room}"), |v| {
        (v["type"] == "room" || v["type"] == "presence") && v["room"] == room
    })
    .await
}

/// The next `presence` frame about `room`, folded into `view`.
async fn presence(ws: &mut WsClient, view: &mut RoomView) -> Value {
    let frame = room_frame(ws, &view.room.clone()).await;
    assert_eq!(frame["type"], "presence", "{frame}");
    assert!(view.apply(&frame));
    frame
}

async fn join(ws: &mut WsClient, room: &str) -> RoomView {
    ws.send_json(json!({"type": "join", "room": room})).await;
    snapshot(ws, room).await
}

async fn snapshot(ws: &mut WsClient, room: &str) -> RoomView {
    let frame = room_frame(ws, room).await;
    assert_eq!(frame["type"], "room", "{frame}");
    let mut view = RoomView::new(room);
    assert!(view.apply(&frame));
    view
}

async fn error_frame(ws: &mut WsClient) -> Value {
    ws.recv_type("error", ms(5000)).await
}

fn only_change(frame: &Value) -> (&str, &Value) {
    let changes = frame["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{frame}");
    (changes[0]["event"].as_str().unwrap(), &changes[0]["member"])
}

async fn get(hub: &TestHub, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(hub.http(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn members_see_each_other_join_change_and_leave() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut alice, _) = hub.welcomed_client("alice&name=Alice&page=/a").await;
        let mut seen_by_alice = join(&mut alice, "doc:1").await;
        assert_eq!(
            seen_by_alice.user_ids(),
            ["alice"],
            "the answer lists the joiner"
        );
        let me = &seen_by_alice.members["alice"];
        assert_eq!(me["name"], "Alice");
        assert_eq!(me["status"], "active");
        assert_eq!(me["session_count"], 1);
        assert_eq!(me["page"], "/a");
        assert!(me["joined_at"].as_str().unwrap().ends_with('Z'));

        let (mut bob, _) = hub.welcomed_client("bob").await;
        let mut seen_by_bob = join(&mut bob, "doc:1").await;
        assert_eq!(seen_by_bob.user_ids(), ["alice", "bob"]);
        let frame = presence(&mut alice, &mut seen_by_alice).await;
        assert_eq!(frame["seq"], 1);
        let (event, member) = only_change(&frame);
        assert_eq!((event, member["user_id"].as_str()), ("join", Some("bob")));

        bob.send_json(json!({"type": "status", "manual": "busy"}))
            .await;
        let frame = presence(&mut alice, &mut seen_by_alice).await;
        let (event, member) = only_change(&frame);
        assert_eq!(event, "update");
        assert_eq!(member["manual"], "busy");
        let own = presence(&mut bob, &mut seen_by_bob).await;
        assert_eq!(
            own["seq"], 1,
            "the joiner's snapshot already had its own join"
        );
        assert_eq!(only_change(&own).0, "update");

        bob.send_json(json!({"type": "ping", "page": "/b"})).await;
        let frame = presence(&mut alice, &mut seen_by_alice).await;
        assert_eq!(only_change(&frame).1["page"], "/b");

        bob.send_json(json!({"type": "leave", "room": "doc:1"}))
            .await;
        let frame = presence(&mut alice, &mut seen_by_alice).await;
        let (event, member) = only_change(&frame);
        assert_eq!(event, "leave");
        assert_eq!(
            member["manual"], "busy",
            "leave carries the member as last seen"
        );
        assert_eq!(member["page"], "/b");
        assert_eq!(frame["seq"], 4);
        assert_eq!(seen_by_alice.user_ids(), ["alice"]);
    })
    .await;
}

#[tokio::test]
async fn a_second_tab_is_an_update_and_closing_the_last_one_a_leave() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut watcher, _) = hub.welcomed_client("watcher").await;
        watcher
            .send_json(json!({"type": "watch", "room": "doc:2"}))
            .await;
        let mut view = snapshot(&mut watcher, "doc:2").await;
        assert!(view.members.is_empty(), "watching is not being present");

        let (mut first, _) = hub.welcomed_client("carol").await;
        join(&mut first, "doc:2").await;
        let frame = presence(&mut watcher, &mut view).await;
        assert_eq!(only_change(&frame).0, "join");
        let (mut second, _) = hub.welcomed_client("carol").await;
        join(&mut second, "doc:2").await;
        let frame = presence(&mut watcher, &mut view).await;
        let (event, member) = only_change(&frame);
        assert_eq!(
            (event, member["session_count"].as_u64()),
            ("update", Some(2))
        );
        first.close().await;
        let frame = presence(&mut watcher, &mut view).await;
        assert_eq!(only_change(&frame).1["session_count"], 1);
        second.close().await;
        let frame = presence(&mut watcher, &mut view).await;
        assert_eq!(only_change(&frame).0, "leave");
        assert!(view.members.is_empty());

        watcher
            .send_json(json!({"type": "unwatch", "room": "doc:2"}))
            .await;
        let (mut late, _) = hub.welcomed_client("dave").await;
        join(&mut late, "doc:2").await;
        let after: Vec<Value> = watcher.collect_for(ms(400)).await;
        assert!(
            after.iter().all(|f| f["room"] != "doc:2"),
            "nothing after unwatch: {after:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn activity_alone_sends_nothing_to_rooms() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut watcher, _) = hub.welcomed_client("watcher").await;
        let (mut busy, _) = hub.welcomed_client("busy").await;
        join(&mut busy, "doc:3").await;
        let view = join(&mut watcher, "doc:3").await;
        assert_eq!(view.user_ids(), ["busy", "watcher"]);
        for i in 0..15 {
            busy.send_json(json!({"type": "ping", "id": i})).await;
            busy.recv_type("pong", ms(2000)).await;
            tokio::time::sleep(ms(100)).await;
        }
        let frames = watcher.collect_for(ms(1200)).await;
        assert!(
            frames.iter().all(|f| f["type"] != "presence"),
            "pings alone produce no room traffic: {frames:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn org_rooms_are_implicit_and_share_no_page() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut anna, _) = hub.welcomed_client("anna&org=acme&page=/secret").await;
        let mut view = join(&mut anna, "org:acme").await;
        assert_eq!(view.user_ids(), ["anna"]);
        assert!(
            view.members["anna"]["page"].is_null(),
            "org rooms: page null"
        );
        let (_ben, _) = hub.welcomed_client("ben&org=acme&page=/x").await;
        let frame = presence(&mut anna, &mut view).await;
        let (event, member) = only_change(&frame);
        assert_eq!((event, member["user_id"].as_str()), ("join", Some("ben")));
        assert!(member["page"].is_null());
        let (_other, _) = hub.welcomed_client("olga&org=other").await;
        let frames = anna.collect_for(ms(300)).await;
        assert!(frames.iter().all(|f| f["type"] != "presence"), "{frames:?}");

        let (admin_status, session) = get(&hub, "/api/v1/users/anna", None).await;
        assert_eq!(admin_status, 200);
        assert_eq!(
            session["sessions"][0]["rooms"],
            json!([]),
            "org rooms are not listed as joined rooms"
        );
    })
    .await;
}

#[tokio::test]
async fn bad_names_forbidden_rooms_and_the_limit_are_errors_that_keep_the_socket() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.jwt_secret = Some(SECRET.into());
            c.max_rooms_per_session = 2;
        })
        .await;
        let token = jwt_claims(
            SECRET,
            json!({"sub": "alice", "org": "acme", "rooms": ["doc:*", "lobby"]}),
        );
        let mut alice = WsClient::connect(&hub.ws_url(&format!("/ws?token={token}"))).await;
        alice.recv_type("welcome", ms(2000)).await;
        for bad in [json!(""), json!("a b"), json!("x".repeat(129)), json!(7)] {
            alice.send_json(json!({"type": "join", "room": bad})).await;
            let error = error_frame(&mut alice).await;
            assert_eq!(error["code"], "bad_message", "{bad}");
        }
        alice
            .send_json(json!({"type": "join", "room": "secret"}))
            .await;
        let error = error_frame(&mut alice).await;
        assert_eq!(error["code"], "forbidden");
        assert_eq!(error["room"], "secret");
        assert!(error["message"].is_string());
        alice
            .send_json(json!({"type": "watch", "room": "org:other"}))
            .await;
        assert_eq!(error_frame(&mut alice).await["code"], "forbidden");

        join(&mut alice, "doc:1").await;
        join(&mut alice, "lobby").await;
        join(&mut alice, "org:acme").await;
        join(&mut alice, "doc:1").await;
        alice
            .send_json(json!({"type": "watch", "room": "doc:2"}))
            .await;
        let error = error_frame(&mut alice).await;
        assert_eq!(error["code"], "room_limit");
        assert_eq!(error["room"], "doc:2");
        alice
            .send_json(json!({"type": "leave", "room": "lobby"}))
            .await;
        alice
            .send_json(json!({"type": "watch", "room": "doc:2"}))
            .await;
        snapshot(&mut alice, "doc:2").await;
        alice.send_json(json!({"type": "ping", "id": 1})).await;
        assert_eq!(alice.recv_type("pong", ms(2000)).await["id"], 1);
    })
    .await;
}

#[tokio::test]
async fn refused_rooms_count_as_bad_frames() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.jwt_secret = Some(SECRET.into())).await;
        let token = jwt_claims(SECRET, json!({"sub": "mallory", "rooms": []}));
        let mut mallory = WsClient::connect(&hub.ws_url(&format!("/ws?token={token}"))).await;
        mallory.recv_type("welcome", ms(2000)).await;
        for _ in 0..21 {
            mallory
                .send_json(json!({"type": "watch", "room": "vault"}))
                .await;
        }
        assert_eq!(mallory.recv_close(ms(5000)).await, Some(1008));
    })
    .await;
}

#[tokio::test]
async fn a_star_opens_every_explicit_room_but_no_other_org() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.jwt_secret = Some(SECRET.into())).await;
        let token = jwt_claims(SECRET, json!({"sub": "sam", "org": "acme", "rooms": ["*"]}));
        let mut sam = WsClient::connect(&hub.ws_url(&format!("/ws?token={token}"))).await;
        sam.recv_type("welcome", ms(2000)).await;
        join(&mut sam, "anything/at@all").await;
        join(&mut sam, "org:acme").await;
        sam.send_json(json!({"type": "join", "room": "org:globex"}))
            .await;
        let error = error_frame(&mut sam).await;
        assert_eq!(
            (error["code"].as_str(), error["room"].as_str()),
            (Some("forbidden"), Some("org:globex"))
        );
        let plain = jwt(SECRET, "pat", None, 300);
        let mut pat = WsClient::connect(&hub.ws_url(&format!("/ws?token={plain}"))).await;
        pat.recv_type("welcome", ms(2000)).await;
        pat.send_json(json!({"type": "watch", "room": "anything/at@all"}))
            .await;
        assert_eq!(error_frame(&mut pat).await["code"], "forbidden");
        pat.send_json(json!({"type": "watch", "room": "org:acme"}))
            .await;
        let view = snapshot(&mut pat, "org:acme").await;
        assert_eq!(
            view.user_ids(),
            ["pat", "sam"],
            "its own org needs no claim"
        );
    })
    .await;
}

#[tokio::test]
async fn joining_is_an_admin_update_with_the_rooms_field() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut admin, _) = hub.admin("").await;
        let (mut alice, welcome) = hub.welcomed_client("alice").await;
        let id = welcome["session_id"].as_str().unwrap().to_string();
        join(&mut alice, "doc:9").await;
        let event = crate::support::admin_session_event(
            &mut admin,
            ms(2000),
            "rooms update",
            |event, s| {
                event == "updated"
                    && s["session_id"] == id.as_str()
                    && s["rooms"] == json!(["doc:9"])
            },
        )
        .await;
        assert_eq!(event["session"]["rooms"], json!(["doc:9"]));
        alice
            .send_json(json!({"type": "leave", "room": "doc:9"}))
            .await;
        crate::support::admin_session_event(&mut admin, ms(2000), "rooms emptied", |event, s| {
            event == "updated" && s["session_id"] == id.as_str() && s["rooms"] == json!([])
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_watcher_that_cannot_keep_up_gets_a_fresh_snapshot_not_a_close() {
    within(Duration::from_secs(60), async {
        let hub = TestHub::start(|c| {
            c.room_queue = 2;
            c.max_rooms_per_session = 256;
            c.client_rate_limit = "5000/s".into();
        })
        .await;
        // Many rooms of members with long names and pages: the snapshots
        // of all of them, about 2.5 MB, are more than the watcher's socket
        // takes unread.
        const BIG_ROOMS: usize = 250;
        let long_name = "n".repeat(500);
        let mut crowd = Vec::new();
        for i in 0..8 {
            let (mut member, _) = hub
                .welcomed_client(&format!("crowd{i}&name={long_name}&page=/{long_name}"))
                .await;
            for room in 0..BIG_ROOMS {
                let room = format!("big{room}");
                member
                    .send_json(json!({"type": "join", "room": room}))
                    .await;
                if room != format!("big{}", BIG_ROOMS - 1) {
                    // Present, but no frames for the crowd.
                    member
                        .send_json(json!({"type": "unwatch", "room": room}))
                        .await;
                }
            }
            // Applied in order: once the last answer is here, so are the rest.
            member
                .recv_until(ms(10_000), "the last big room", |v| {
                    v["type"] == "room" && v["room"] == format!("big{}", BIG_ROOMS - 1)
                })
                .await;
            crowd.push(tokio::spawn(async move {
                while let Some(Ok(_)) = member.socket.next().await {}
            }));
        }
        let (mut noisy, _) = hub.welcomed_client("noisy").await;
        join(&mut noisy, "busy").await;

        let mut slow = slow_reader(&hub.ws_url("/ws?user=slow")).await;
        slow.send_json(json!({"type": "watch", "room": "busy"}))
            .await;
        // Stop reading, and watch every big room: the hub's writes to this
        // socket block.
        for room in 0..BIG_ROOMS {
            slow.send_json(json!({"type": "watch", "room": format!("big{room}")}))
                .await;
        }
        for i in 0..40 {
            let manual = if i % 2 == 0 {
                json!("busy")
            } else {
                Value::Null
            };
            noisy
                .send_json(json!({"type": "status", "manual": manual}))
                .await;
            tokio::time::sleep(ms(40)).await;
        }
        noisy
            .send_json(json!({"type": "status", "manual": "away"}))
            .await;

        let mut view = RoomView::new("busy");
        let deadline = tokio::time::Instant::now() + ms(20_000);
        loop {
            for frame in slow.collect_for(ms(300)).await {
                view.apply(&frame);
            }
            let settled = view
                .members
                .get("noisy")
                .is_some_and(|m| m["manual"] == "away" && m["status"] == "away");
            if settled {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the slow watcher never converged: {view:?}"
            );
        }
        assert!(
            view.snapshots >= 2,
            "the hub resynchronised the watcher with a fresh snapshot ({} snapshots)",
            view.snapshots
        );
        slow.send_json(json!({"type": "ping", "id": "still-open"}))
            .await;
        let pong = slow.recv_type("pong", ms(5000)).await;
        assert_eq!(pong["id"], "still-open", "the slow watcher was not closed");
        let (status, room) = get(&hub, "/api/v1/rooms/busy", None).await;
        assert_eq!(status, 200);
        let expected: Vec<&str> = room["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["user_id"].as_str().unwrap())
            .collect();
        assert_eq!(view.user_ids(), expected);
    })
    .await;
}

#[tokio::test]
async fn admins_list_rooms_by_size_and_read_one_room() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let mut clients = Vec::new();
        for (user, room) in [
            ("u1", "team/eng"),
            ("u2", "team/eng"),
            ("u3", "team/eng"),
            ("u1", "lobby"),
        ] {
            let (mut client, _) = hub.welcomed_client(&format!("{user}&org=acme")).await;
            join(&mut client, room).await;
            clients.push(client);
        }
        let (status, list) = get(&hub, "/api/v1/rooms", None).await;
        assert_eq!(status, 200);
        assert_eq!(list["total"], 3);
        assert_eq!(
            (list["page"].as_u64(), list["page_size"].as_u64()),
            (Some(1), Some(20))
        );
        let rooms = list["rooms"].as_array().unwrap();
        assert_eq!(
            rooms[0],
            json!({"room": "org:acme", "members": 3, "sessions": 4}),
            "most members first"
        );
        assert_eq!(
            rooms[1],
            json!({"room": "team/eng", "members": 3, "sessions": 3})
        );
        assert_eq!(
            rooms[2],
            json!({"room": "lobby", "members": 1, "sessions": 1})
        );
        let (_, filtered) = get(&hub, "/api/v1/rooms?q=TEAM&page_size=1", None).await;
        assert_eq!(filtered["total"], 1);
        assert_eq!(filtered["rooms"][0]["room"], "team/eng");
        let (_, second) = get(&hub, "/api/v1/rooms?page=2&page_size=2", None).await;
        assert_eq!(second["rooms"].as_array().unwrap().len(), 1);

        let (status, room) = get(&hub, "/api/v1/rooms/team%2Feng", None).await;
        assert_eq!(status, 200, "{room}");
        assert_eq!(room["room"], "team/eng");
        let members = room["members"].as_array().unwrap();
        assert_eq!(members.len(), 3);
        members.iter().for_each(assert_member);
        let (status, body) = get(&hub, "/api/v1/rooms/nobody-here", None).await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], "not_found");
        let (status, _) = get(&hub, "/api/v1/rooms/not%20a%20room", None).await;
        assert_eq!(status, 404);
    })
    .await;
}

#[tokio::test]
async fn client_tokens_read_rooms_they_may_watch_but_never_the_list() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.jwt_secret = Some(SECRET.into())).await;
        let member = jwt_claims(
            SECRET,
            json!({"sub": "vic", "org": "acme", "rooms": ["doc:*"]}),
        );
        let mut vic = WsClient::connect(&hub.ws_url(&format!("/ws?token={member}"))).await;
        vic.recv_type("welcome", ms(2000)).await;
        join(&mut vic, "doc:7").await;
        let reader = jwt_claims(SECRET, json!({"sub": "ssr", "rooms": ["doc:7"]}));
        let outsider = jwt_claims(SECRET, json!({"sub": "eve", "rooms": ["other"]}));
        let admin = jwt(SECRET, "root", Some("admin"), 300);

        let (status, room) = get(&hub, "/api/v1/rooms/doc%3A7", Some(&reader)).await;
        assert_eq!(status, 200, "{room}");
        assert_eq!(room["members"][0]["user_id"], "vic");
        assert_eq!(
            get(&hub, "/api/v1/rooms/doc%3A7", Some(&outsider)).await.0,
            403
        );
        assert_eq!(get(&hub, "/api/v1/rooms/doc%3A7", None).await.0, 401);
        assert_eq!(
            get(&hub, "/api/v1/rooms/doc%3A7", Some(&admin)).await.0,
            200
        );
        assert_eq!(
            get(&hub, "/api/v1/rooms/org%3Aacme", Some(&member)).await.0,
            200
        );
        assert_eq!(get(&hub, "/api/v1/rooms", Some(&reader)).await.0, 403);
        assert_eq!(get(&hub, "/api/v1/rooms", None).await.0, 401);
        let (status, list) = get(&hub, "/api/v1/rooms", Some(&admin)).await;
        assert_eq!(status, 200);
        assert_eq!(list["total"], 2);
    })
    .await;
}

#[tokio::test]
async fn metrics_count_rooms_and_members() {
    within(LIMIT, async {
        let hub = TestHub::start(|_| {}).await;
        let (mut a, _) = hub.welcomed_client("a&org=acme").await;
        join(&mut a, "doc:1").await;
        let (_b, _) = hub.welcomed_client("b&org=acme").await;
        let text = crate::support::eventually(ms(3000), "room gauges", || async {
            let text = reqwest::get(hub.http("/metrics"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.contains("presence_room_members 3").then_some(text)
        })
        .await;
        assert!(text.contains("presence_rooms 2"), "{text}");
    })
    .await;
}

#[tokio::test]
async fn time_driven_status_and_http_sessions_reach_rooms() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.idle_after = ms(800);
            c.away_after = ms(1600);
        })
        .await;
        let (mut watcher, _) = hub.welcomed_client("watcher&org=acme").await;
        let mut view = join(&mut watcher, "org:acme").await;
        let (mut tab, _) = hub.welcomed_client("tab&org=acme").await;
        join(&mut tab, "doc:idle").await;
        let frame = presence(&mut watcher, &mut view).await;
        assert_eq!(only_change(&frame).0, "join");
        // Both tabs turn idle by themselves, often in the same batch.
        while view.members["tab"]["status"] != "idle" {
            let frame = presence(&mut watcher, &mut view).await;
            for change in frame["changes"].as_array().unwrap() {
                assert_eq!(change["event"], "update", "{frame}");
            }
        }

        let response = reqwest::Client::new()
            .post(hub.http("/api/v1/heartbeat?user=beat&org=acme"))
            .json(&json!({"active": true, "page": "/hidden"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let beat = loop {
            let frame = presence(&mut watcher, &mut view).await;
            let changes = frame["changes"].as_array().unwrap();
            if let Some(beat) = changes.iter().find(|c| c["member"]["user_id"] == "beat") {
                break beat.clone();
            }
        };
        assert_eq!(beat["event"], "join", "the HTTP session joins its org room");
        assert!(beat["member"]["page"].is_null());
    })
    .await;
}

/// The `rooms` of Ann's session as admins see it.
async fn session_rooms(hub: &TestHub, admin: &str) -> Value {
    let (status, body) = get(hub, "/api/v1/sessions", Some(admin)).await;
    assert_eq!(status, 200, "{body}");
    let sessions = body["sessions"].as_array().unwrap();
    let ann = sessions.iter().find(|s| s["user_id"] == "ann").unwrap();
    ann["rooms"].clone()
}

#[tokio::test]
async fn a_new_token_leaves_and_unwatches_the_rooms_it_no_longer_allows() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| c.jwt_secret = Some(SECRET.into())).await;
        let admin = jwt(SECRET, "root", Some("admin"), 300);
        let wide = jwt_claims(SECRET, json!({"sub": "ann", "rooms": ["doc:*"]}));
        let mut ann = WsClient::connect(&hub.ws_url(&format!("/ws?token={wide}"))).await;
        ann.recv_type("welcome", ms(2000)).await;
        join(&mut ann, "doc:1").await;
        join(&mut ann, "doc:2").await;
        assert_eq!(session_rooms(&hub, &admin).await, json!(["doc:1", "doc:2"]));

        let watcher = jwt_claims(SECRET, json!({"sub": "wes", "rooms": ["doc:*"]}));
        let mut wes = WsClient::connect(&hub.ws_url(&format!("/ws?token={watcher}"))).await;
        wes.recv_type("welcome", ms(2000)).await;
        wes.send_json(json!({"type": "watch", "room": "doc:1"}))
            .await;
        let mut seen_by_wes = snapshot(&mut wes, "doc:1").await;
        assert_eq!(seen_by_wes.user_ids(), ["ann"]);

        let narrow = jwt_claims(
            SECRET,
            json!({"sub": "ann", "rooms": ["doc:2"], "exp": chrono::Utc::now().timestamp() + 600}),
        );
        ann.send_json(json!({"type": "auth", "token": narrow}))
            .await;
        ann.recv_type("auth_ok", ms(2000)).await;
        let frame = presence(&mut wes, &mut seen_by_wes).await;
        let (event, member) = only_change(&frame);
        assert_eq!((event, member["user_id"].as_str()), ("leave", Some("ann")));
        assert_eq!(session_rooms(&hub, &admin).await, json!(["doc:2"]));

        // Ann no longer watches doc:1: a change there reaches her no more,
        // while doc:2 still does.
        wes.send_json(json!({"type": "join", "room": "doc:1"}))
            .await;
        wes.send_json(json!({"type": "join", "room": "doc:2"}))
            .await;
        let frame = room_frame(&mut ann, "doc:2").await;
        assert_eq!(frame["type"], "presence", "{frame}");
        let late = ann.collect_for(ms(300)).await;
        assert!(
            late.iter().all(|frame| frame["room"] != "doc:1"),
            "{late:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_resume_takes_the_rooms_claim_of_the_new_token() {
    within(LIMIT, async {
        let hub = TestHub::start(|c| {
            c.jwt_secret = Some(SECRET.into());
            c.resume_grace = ms(5000);
        })
        .await;
        let admin = jwt(SECRET, "root", Some("admin"), 300);
        let wide = jwt_claims(SECRET, json!({"sub": "ann", "rooms": ["doc:*"]}));
        let mut ann = WsClient::connect(&hub.ws_url(&format!("/ws?token={wide}"))).await;
        let welcome = ann.recv_type("welcome", ms(2000)).await;
        let resume = welcome["resume_token"].as_str().unwrap().to_string();
        join(&mut ann, "doc:1").await;
        join(&mut ann, "doc:2").await;
        ann.close().await;

        let narrow = jwt_claims(SECRET, json!({"sub": "ann", "rooms": ["doc:2"]}));
        let mut back =
            WsClient::connect(&hub.ws_url(&format!("/ws?token={narrow}&resume={resume}"))).await;
        let again = back.recv_type("welcome", ms(2000)).await;
        assert_eq!(again["resumed"], true);
        assert_eq!(session_rooms(&hub, &admin).await, json!(["doc:2"]));
    })
    .await;
}
