//! The per-event send: `rd_kafka_produceva` on a topic handle made once per run.
//!
//! rdkafka's `BaseProducer::send` builds a `CString` of the topic name for every record (an
//! allocation and a copy) and librdkafka then looks the topic up by that name under a lock; the
//! caller also builds an `OwnedHeaders` list per record. Here the topic handle is made once, and
//! the headers are handed to librdkafka as `RD_KAFKA_VTYPE_HEADER` entries it adds to the record
//! itself. Everything else is what rdkafka does: the value and key are copied
//! (`RD_KAFKA_MSG_F_COPY`), the partition is left to librdkafka's partitioner, and the delivery
//! opaque is the `usize` that rdkafka's delivery callback hands back to the producer's context,
//! so delivery reports are served by `BaseProducer::poll` exactly as before.

use std::ffi::{c_void, CStr, CString};
use std::ptr::NonNull;

use rdkafka::bindings as rdsys;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaTopic};

/// A producer's handle on one topic, for sending records to it.
pub struct Sender<'p, C: ProducerContext<DeliveryOpaque = usize>> {
    /// The producer that owns the handle and serves the delivery reports; borrowed, so the
    /// handle cannot outlive it.
    producer: &'p BaseProducer<C>,
    /// librdkafka's topic handle, made with the producer's default topic configuration (as the
    /// lookup by name in `rd_kafka_producev` makes it); destroyed on drop.
    topic: NonNull<RDKafkaTopic>,
}

impl<'p, C: ProducerContext<DeliveryOpaque = usize>> Sender<'p, C> {
    /// A handle on `topic` for `producer`.
    pub fn new(producer: &'p BaseProducer<C>, topic: &str) -> Result<Self, KafkaError> {
        let name = CString::new(topic)?;
        // SAFETY: the client pointer is valid for as long as `producer` lives, which the borrow
        // guarantees; `name` is a valid C string for the duration of the call (librdkafka copies
        // it); a null configuration means the producer's default topic configuration.
        let raw = unsafe {
            rdsys::rd_kafka_topic_new(
                producer.client().native_ptr(),
                name.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        let topic = NonNull::new(raw).ok_or_else(|| {
            // SAFETY: reads librdkafka's thread-local last error, set by the failed call above.
            let code = unsafe { rdsys::rd_kafka_last_error() };
            KafkaError::ClientCreation(format!(
                "cannot make a handle on topic '{topic}': {}",
                RDKafkaErrorCode::from(code)
            ))
        })?;
        Ok(Sender { producer, topic })
    }

    /// Enqueues one record: `value` and `key` are copied, `headers` (name, value) added to it,
    /// and `opaque` comes back with its delivery report. A refusal (a full queue, a fatal
    /// error) is returned as rdkafka's `send` returns it, and nothing was enqueued.
    pub fn send(
        &self,
        value: &[u8],
        key: Option<&[u8]>,
        headers: &[(&CStr, &[u8])],
        opaque: usize,
    ) -> Result<(), KafkaError> {
        /// Topic, flags, value, opaque and key: the entries besides the headers.
        const FIXED: usize = 5;
        /// Headers a record can carry here (the run's and the warm-up mark, with room to spare).
        const MAX_HEADERS: usize = 4;
        assert!(
            headers.len() <= MAX_HEADERS,
            "at most {MAX_HEADERS} headers"
        );
        let entry = |vtype, u| rdsys::rd_kafka_vu_t { vtype, u };
        let mem = |bytes: &[u8]| rdsys::rd_kafka_vu_s__bindgen_ty_1 {
            mem: rdsys::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 {
                ptr: bytes.as_ptr() as *mut c_void,
                size: bytes.len(),
            },
        };
        let mut vus = [entry(
            rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_END,
            rdsys::rd_kafka_vu_s__bindgen_ty_1 { i: 0 },
        ); FIXED + MAX_HEADERS];
        vus[0] = entry(
            rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_RKT,
            rdsys::rd_kafka_vu_s__bindgen_ty_1 {
                rkt: self.topic.as_ptr(),
            },
        );
        vus[1] = entry(
            rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_MSGFLAGS,
            rdsys::rd_kafka_vu_s__bindgen_ty_1 {
                i: rdsys::RD_KAFKA_MSG_F_COPY,
            },
        );
        vus[2] = entry(rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_VALUE, mem(value));
        vus[3] = entry(
            rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_OPAQUE,
            rdsys::rd_kafka_vu_s__bindgen_ty_1 {
                ptr: opaque as *mut c_void,
            },
        );
        let mut used = 4;
        if let Some(key) = key {
            vus[used] = entry(rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_KEY, mem(key));
            used += 1;
        }
        for (name, value) in headers {
            vus[used] = entry(
                rdsys::rd_kafka_vtype_t::RD_KAFKA_VTYPE_HEADER,
                rdsys::rd_kafka_vu_s__bindgen_ty_1 {
                    header: rdsys::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_2 {
                        name: name.as_ptr(),
                        val: value.as_ptr() as *const c_void,
                        size: value.len() as isize,
                    },
                },
            );
            used += 1;
        }
        // SAFETY: the client and topic pointers are valid (see `new`); every entry's pointers
        // point into `value`, `key` and `headers`, which outlive the call, and librdkafka copies
        // them all before returning (F_COPY for the value and key, header_add for the headers);
        // `opaque` is only an integer to librdkafka, handed back to rdkafka's delivery callback,
        // which reads it as the context's `usize` opaque without dereferencing it.
        let error = unsafe {
            rdsys::rd_kafka_produceva(self.producer.client().native_ptr(), vus.as_ptr(), used)
        };
        if error.is_null() {
            return Ok(());
        }
        // SAFETY: a non-null result is an error object we own: read its code, then free it.
        let code = unsafe {
            let code = rdsys::rd_kafka_error_code(error);
            rdsys::rd_kafka_error_destroy(error);
            code
        };
        Err(KafkaError::MessageProduction(code.into()))
    }
}

impl<C: ProducerContext<DeliveryOpaque = usize>> Drop for Sender<'_, C> {
    fn drop(&mut self) {
        // SAFETY: the handle was made by `new` and is released once; the producer it belongs to
        // is still alive (borrowed), and librdkafka keeps the topic for messages in flight.
        unsafe { rdsys::rd_kafka_topic_destroy(self.topic.as_ptr()) }
    }
}
