//! QUIC Initials: records (see `allowscope_fuzz::records`), each a direction byte (even: from
//! the client, odd: from the server) then one UDP payload, read as a flow's datagrams.
#![no_main]

use allowscope::proto::quic;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (mut client, mut server) = (Vec::new(), Vec::new());
    for rec in allowscope_fuzz::records(data) {
        if let Some((dir, datagram)) = rec.split_first() {
            if dir & 1 == 0 {
                client.push(datagram);
            } else {
                server.push(datagram);
            }
        }
    }
    std::hint::black_box(quic::client_initial(client.iter().copied()));
    std::hint::black_box(quic::flow_facts(
        client.iter().copied(),
        server.iter().copied(),
    ));
});
