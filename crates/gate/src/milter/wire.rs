//! The milter conversation on the wire: framing, option negotiation, and which commands
//! get a reply.
//!
//! Own code rather than `miltr_server::Server` (whose [`Milter`] trait, commands and
//! replies this module keeps using) because that loop answers every command. It can
//! therefore only negotiate a conversation in which the MTA waits for an answer after each
//! header field, after the end of the headers and after each body chunk: with Postfix,
//! 15 to 20 round trips per message, each a wake-up of both processes (issue 17: about a
//! fifth of the gate's CPU in milter mode went to writing those answers). Milter protocol 6
//! lets the filter ask for no reply to a stage (`SMFIP_NR_*`) and for stages it does not
//! read not to be sent at all (`SMFIP_NO*`); this loop honours exactly what was negotiated
//! (the intersection of what the MTA offered and what [`Milter::option_negotiation`]
//! asked for), so an MTA that offers none of it gets the old conversation.
//!
//! Invariants:
//! - a packet longer than `max_packet` is refused from its length field, before it is
//!   buffered (the input buffer holds at most one packet and one read);
//! - every reply is written before the loop waits for more input or ends, in one write
//!   per batch of commands that arrived together (the MTA may be waiting for any of them);
//! - a stage negotiated as no-reply never produces bytes: if the milter answers anything
//!   but "continue" there, the connection is closed (the MTA applies its
//!   `milter_default_action`, tempfail for the gate) rather than sending an answer the MTA
//!   would read as the reply to a later command.

use bytes::{Buf, BytesMut};
use miltr_common::ProtocolError;
use miltr_common::actions::Action;
use miltr_common::decoding::ClientCommand;
use miltr_common::encoding::{ServerMessage, Writable};
use miltr_common::optneg::{Capability, OptNeg, Protocol};
use miltr_server::{Error, Milter};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes asked of the socket per read (more when a packet announced is longer).
const READ_CHUNK: usize = 16 * 1024;

/// Serve one MTA connection until it quits or closes. `max_packet`: the longest packet
/// accepted or sent (length field, without the 4 bytes of the field itself).
///
/// # Errors
/// I/O, a malformed or oversized packet, a milter error, or a milter answer other than
/// "continue" to a stage negotiated as no-reply.
pub(crate) async fn serve<M, S>(
    milter: &mut M,
    mut stream: S,
    max_packet: usize,
) -> Result<(), Error<M::Error>>
where
    M: Milter,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output = BytesMut::new();
    let mut session = Session::default();
    loop {
        loop {
            // The answers given so far go out even when the conversation ends here.
            let flow = match next_packet(&mut input, max_packet) {
                Ok(Some(command)) => session.step(milter, command, &mut output, max_packet).await,
                Ok(None) => break,
                Err(error) => Err(error.into()),
            };
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Quit) => {
                    stream.write_all(&output).await?;
                    return Ok(());
                }
                Err(error) => {
                    let _ = stream.write_all(&output).await;
                    return Err(error);
                }
            }
        }
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
        input.reserve(READ_CHUNK);
        if stream.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

/// What was negotiated; before option negotiation every command is answered.
#[derive(Default)]
struct Session {
    negotiated: Option<OptNeg>,
}

impl Session {
    fn protocol(&self) -> Protocol {
        self.negotiated
            .as_ref()
            .map_or(Protocol::empty(), |optneg| optneg.protocol)
    }

    async fn step<M: Milter>(
        &mut self,
        milter: &mut M,
        command: ClientCommand,
        output: &mut BytesMut,
        max_packet: usize,
    ) -> Result<Flow, Error<M::Error>> {
        let app = |source| Error::Impl { source };
        let (answer, no_reply) = match command {
            ClientCommand::OptNeg(theirs) => {
                let ours = milter.option_negotiation(theirs).await?;
                encode(&ServerMessage::from(ours.clone()), output, max_packet)?;
                self.negotiated = Some(ours);
                return Ok(Flow::Continue);
            }
            ClientCommand::Macro(macros) => {
                milter.macro_(macros).await.map_err(app)?;
                return Ok(Flow::Continue);
            }
            ClientCommand::EndOfBody(_) => {
                let mut response = milter.end_of_body().await.map_err(app)?;
                // Only the modifications the MTA agreed to receive.
                response.filter_mods_by_caps(
                    self.negotiated
                        .as_ref()
                        .map_or(Capability::all(), |optneg| optneg.capabilities),
                );
                for message in Vec::<ServerMessage>::from(response) {
                    encode(&message, output, max_packet)?;
                }
                return Ok(Flow::Continue);
            }
            ClientCommand::Abort(_) => {
                milter.abort().await.map_err(app)?;
                return Ok(Flow::Continue);
            }
            ClientCommand::Quit(_) => {
                milter.quit().await.map_err(app)?;
                return Ok(Flow::Quit);
            }
            ClientCommand::QuitNc(_) => {
                milter.quit_nc().await.map_err(app)?;
                return Ok(Flow::Continue);
            }
            ClientCommand::Connect(connect) => {
                (milter.connect(connect).await, Protocol::NR_CONNECT)
            }
            ClientCommand::Helo(helo) => (milter.helo(helo).await, Protocol::NR_HELO),
            ClientCommand::Mail(mail) => (milter.mail(mail).await, Protocol::NR_MAIL),
            ClientCommand::Recipient(rcpt) => (milter.rcpt(rcpt).await, Protocol::NR_RECIPIENT),
            ClientCommand::Data(_) => (milter.data().await, Protocol::NR_DATA),
            ClientCommand::Header(header) => (milter.header(header).await, Protocol::NR_HEADER),
            ClientCommand::EndOfHeader(_) => {
                (milter.end_of_header().await, Protocol::NR_END_OF_HEADER)
            }
            ClientCommand::Body(body) => (milter.body(body).await, Protocol::NR_BODY),
            ClientCommand::Unknown(unknown) => {
                (milter.unknown(unknown).await, Protocol::NR_UNKNOWN)
            }
        };
        let answer = answer.map_err(app)?;
        if self.protocol().contains(no_reply) {
            return match answer {
                Action::Continue(_) => Ok(Flow::Continue),
                _ => Err(Error::Io(std::io::Error::other(
                    "milter answered a stage negotiated as no-reply",
                ))),
            };
        }
        encode(&ServerMessage::from(answer), output, max_packet)?;
        Ok(Flow::Continue)
    }
}

/// The next whole packet in `input`, if one has arrived.
fn next_packet(
    input: &mut BytesMut,
    max_packet: usize,
) -> Result<Option<ClientCommand>, ProtocolError> {
    let Some(length) = input.get(..4) else {
        return Ok(None);
    };
    let mut field = [0u8; 4];
    field.copy_from_slice(length);
    let length = usize::try_from(u32::from_be_bytes(field)).unwrap_or(usize::MAX);
    if length > max_packet {
        return Err(ProtocolError::TooMuchData(length));
    }
    if input.len() < 4 + length {
        input.reserve(4 + length - input.len());
        return Ok(None);
    }
    let mut packet = input.split_to(4 + length);
    packet.advance(4);
    ClientCommand::parse(packet).map(Some)
}

/// Append `message` as one packet.
fn encode(
    message: &ServerMessage,
    output: &mut BytesMut,
    max_packet: usize,
) -> Result<(), ProtocolError> {
    let length = message
        .len()
        .checked_add(1)
        .filter(|length| *length <= max_packet)
        .ok_or(ProtocolError::TooMuchData(message.len()))?;
    let field = u32::try_from(length).map_err(|_| ProtocolError::TooMuchData(length))?;
    output.reserve(4 + length);
    output.extend_from_slice(&field.to_be_bytes());
    output.extend_from_slice(&[message.code()]);
    message.write(output);
    Ok(())
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use miltr_common::actions::{Continue, Reject};
    use miltr_common::commands::Header;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Asks for no reply to headers, and then refuses one anyway.
    struct Refuses;

    #[async_trait]
    impl Milter for Refuses {
        type Error = std::convert::Infallible;
        async fn option_negotiation(
            &mut self,
            theirs: OptNeg,
        ) -> Result<OptNeg, Error<Self::Error>> {
            let ours = OptNeg {
                protocol: Protocol::NR_HEADER,
                ..OptNeg::default()
            };
            Ok(ours
                .merge_compatible(&theirs)
                .map_err(ProtocolError::from)?)
        }
        async fn header(&mut self, header: Header) -> Result<Action, Self::Error> {
            Ok(if header.name() == "X-Refuse" {
                Reject.into()
            } else {
                Continue.into()
            })
        }
        async fn abort(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    fn packet(code: u8, data: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(data.len() + 1)
            .unwrap()
            .to_be_bytes()
            .to_vec();
        out.push(code);
        out.extend_from_slice(data);
        out
    }

    fn optneg(offer: u32) -> Vec<u8> {
        let mut data = 6u32.to_be_bytes().to_vec();
        data.extend_from_slice(&0x1ffu32.to_be_bytes());
        data.extend_from_slice(&offer.to_be_bytes());
        packet(b'O', &data)
    }

    /// Runs the conversation `input` against `Refuses`; the bytes written and the result.
    async fn converse(input: Vec<u8>) -> (Vec<u8>, Result<(), String>) {
        let (mut mta, gate) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(async move {
            serve(&mut Refuses, gate, 1 << 16)
                .await
                .map_err(|error| error.to_string())
        });
        mta.write_all(&input).await.unwrap();
        mta.shutdown().await.unwrap();
        let mut written = Vec::new();
        mta.read_to_end(&mut written).await.unwrap();
        (written, server.await.unwrap())
    }

    /// A no-reply stage that does not continue closes the connection without a byte for
    /// it: an answer there would be read by the MTA as the reply to its next command.
    #[tokio::test]
    async fn a_refusal_at_a_no_reply_stage_closes_the_connection_silently() {
        let mut input = optneg(0x1f_ffff);
        input.extend(packet(b'L', b"X-Refuse\0yes\0"));
        input.extend(packet(b'N', b""));
        let (written, result) = converse(input).await;
        assert!(result.is_err(), "{result:?}");
        // only the option negotiation reply (4 + 1 + 12 bytes)
        assert_eq!(written.len(), 17, "{written:?}");
        assert_eq!(written.get(4), Some(&b'O'));
    }

    /// Not negotiated (the MTA offered nothing): the same refusal is an ordinary answer.
    #[tokio::test]
    async fn without_the_flag_the_refusal_is_answered() {
        let mut input = optneg(0);
        input.extend(packet(b'L', b"X-Refuse\0yes\0"));
        let (written, result) = converse(input).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            written.get(17..),
            Some(&packet(b'r', b"")[..]),
            "{written:?}"
        );
    }

    /// Headers negotiated as no-reply, then end of headers (answered): one answer only.
    #[tokio::test]
    async fn only_the_answered_stages_produce_bytes() {
        let mut input = optneg(0x1f_ffff);
        for index in 0..20 {
            input.extend(packet(b'L', format!("X-{index}\0v\0").as_bytes()));
        }
        input.extend(packet(b'N', b""));
        let (written, result) = converse(input).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            written.get(17..),
            Some(&packet(b'c', b"")[..]),
            "{written:?}"
        );
    }

    /// A packet announced longer than the limit is refused from its length field.
    #[tokio::test]
    async fn an_oversized_packet_is_refused_before_it_is_read() {
        let mut input = optneg(0);
        input.extend_from_slice(&(1u32 << 20).to_be_bytes());
        let (_, result) = converse(input).await;
        assert!(result.is_err_and(|e| e.contains("too large")));
    }
}
