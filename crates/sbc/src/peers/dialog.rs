//! The little a simulated peer keeps of a dialog (RFC 3261 §12) to send
//! BYE, REFER and ACK in it.

use sip::Message;

use super::{
    branch, contact_uri, record_routes, request, value, Audio, Endpoint, Incoming, Link, Result,
};

/// A call answered by a simulated peer: its media and its dialog.
pub(crate) struct Answered {
    pub(crate) audio: Audio,
    pub(crate) dialog: Dialog,
}

/// One dialog as seen from a simulated peer.
#[derive(Debug)]
pub(crate) struct Dialog {
    link: Link,
    pub(crate) call_id: String,
    /// Our From value in requests (with our tag) and the far end's To.
    local: String,
    remote: String,
    /// The far end's Contact URI: the Request-URI of our requests.
    target: String,
    route: Vec<String>,
    cseq: u32,
    contact: String,
    agent: &'static str,
}

impl Dialog {
    /// The dialog of an INVITE we sent, from its 2xx. Microsoft's own
    /// Record-Route (we play the proxy) is not part of the route set.
    pub(crate) fn uac(
        link: Link,
        invite: &Message,
        ok: &Message,
        contact: &str,
        agent: &'static str,
    ) -> Result<Dialog> {
        let mut route = record_routes(ok);
        route.reverse();
        route.retain(|r| !r.contains("pstnhub.microsoft.com"));
        Ok(Dialog {
            link,
            call_id: invite.call_id().map_err(|e| e.to_string())?.to_owned(),
            local: value(invite, "From").ok_or("INVITE without From")?,
            remote: value(ok, "To").ok_or("200 without To")?,
            target: contact_uri(ok).ok_or("200 without Contact")?,
            route,
            cseq: 1,
            contact: contact.to_owned(),
            agent,
        })
    }

    /// The dialog of an INVITE we answered with To tag `tag`.
    pub(crate) fn uas(
        offer: &Incoming,
        tag: &str,
        contact: &str,
        agent: &'static str,
    ) -> Result<Dialog> {
        let m = &offer.msg;
        let to = value(m, "To").ok_or("INVITE without To")?;
        Ok(Dialog {
            link: offer.link.clone(),
            call_id: m.call_id().map_err(|e| e.to_string())?.to_owned(),
            local: format!("{to};tag={tag}"),
            remote: value(m, "From").ok_or("INVITE without From")?,
            target: contact_uri(m).ok_or("INVITE without Contact")?,
            route: record_routes(m),
            cseq: 0,
            contact: contact.to_owned(),
            agent,
        })
    }

    fn build(&self, method: &str, cseq: u32, extra: &[(&str, &str)]) -> Result<(Message, String)> {
        let branch = branch();
        let via = self.link.via(&branch);
        let cseq = format!("{cseq} {method}");
        let mut headers: Vec<(&str, &str)> = vec![("Via", &via), ("Max-Forwards", "70")];
        headers.extend(self.route.iter().map(|r| ("Route", r.as_str())));
        headers.extend([
            ("From", self.local.as_str()),
            ("To", self.remote.as_str()),
            ("Call-ID", self.call_id.as_str()),
            ("CSeq", cseq.as_str()),
            ("Contact", self.contact.as_str()),
            ("User-Agent", self.agent),
        ]);
        headers.extend_from_slice(extra);
        Ok((request(method, &self.target, &headers, None)?, branch))
    }

    /// Sends a new request in the dialog; returns its Via branch.
    pub(crate) async fn send(&mut self, method: &str, extra: &[(&str, &str)]) -> Result<String> {
        self.cseq += 1;
        let (m, branch) = self.build(method, self.cseq, extra)?;
        self.link.send(&m).await?;
        Ok(branch)
    }

    /// The ACK of a 2xx to the INVITE with CSeq `cseq`.
    pub(crate) async fn ack(&mut self, cseq: u32) -> Result<()> {
        let (m, _) = self.build("ACK", cseq, &[])?;
        self.link.send(&m).await
    }

    /// Sends BYE and waits for its 200 on `ep`.
    pub(crate) async fn hang_up(&mut self, ep: &mut Endpoint) -> Result<()> {
        let branch = self.send("BYE", &[]).await?;
        let (r, _) = ep.final_response(&branch).await?;
        if r.status() != Some(200) {
            return Err(format!(
                "{}: BYE answered {}",
                ep.name,
                r.status().unwrap_or(0)
            ));
        }
        Ok(())
    }
}
